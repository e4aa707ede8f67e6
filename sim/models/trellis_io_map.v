// Yosys techmap for the simulation netlist of a board top: each ECP5 I/O cell (TRELLIS_IO) as a
// plain connection, an input's pin to its O, an always-driven output's I to its pin (DIR
// "OUTPUT" with T tied low). Yosys's own model of the cell has a tri-state pin, which Verilator
// refuses on a top-level input. A cell of any other use is left as it is (_TECHMAP_FAIL_).
module TRELLIS_IO (
    inout  B,
    input  I,
    input  T,
    output O
);
    parameter DIR = "INPUT";
    parameter _TECHMAP_CONSTMSK_T_ = 1'b0;
    parameter _TECHMAP_CONSTVAL_T_ = 1'b0;

    generate
        if (DIR == "INPUT") begin
            assign O = B;
        end else if (DIR == "OUTPUT" && _TECHMAP_CONSTMSK_T_ == 1'b1 && _TECHMAP_CONSTVAL_T_ == 1'b0) begin
            assign B = I;
        end else begin
            wire _TECHMAP_FAIL_ = 1'b1;
        end
    endgenerate
endmodule
