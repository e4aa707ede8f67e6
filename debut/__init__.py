"""The torch-free core every layer uses: errors, fixed-point formats, DeBut chains."""
