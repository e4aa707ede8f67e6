"""The UART host link: frame format (protocol), its gateware (UARTs and the device side of the
link) and the host driver, kept together so that both ends change as one."""
