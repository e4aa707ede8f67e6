"""cocotb testbenches and the simulation runner for the emitted Verilog."""
