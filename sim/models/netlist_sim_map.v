// Yosys techmap for the simulation netlist of a board top (the netlist check), for the cells a
// plain description simulates faster than Yosys's models of them:
//
// - LUT4: the INIT bit its inputs select, one expression (Yosys's model is a tree of muxes over
//   wires of 8, 4 and 2 bits, which Verilator turns into about twice the C++);
// - TRELLIS_IO: a plain connection, an input's pin to its O, an always-driven output's I to its
//   pin (DIR "OUTPUT" with T tied low). Yosys's model has a tri-state pin, which Verilator
//   refuses on a top-level input. A cell of any other use is left as it is (_TECHMAP_FAIL_), and
//   the netlist check refuses it.
module LUT4 (
    input  A,
    input  B,
    input  C,
    input  D,
    output Z
);
    parameter [15:0] INIT = 16'h0000;
    assign Z = INIT[{D, C, B, A}];
endmodule

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
