// Behavioural simulation model of the ECP5 MULT18X18D: an 18x18 multiply, P = A x B (36 bits),
// with SIGNEDA and SIGNEDB choosing signed or unsigned operands, and the cell's optional input
// registers (A, B), pipeline register and output register, each on the clock, clock enable and
// synchronous reset its REG_*_CLK/_CE/_RST parameters name. Yosys ships only a blackbox of this
// cell; this model lets netlists and cores that use it be simulated with Icarus. The cascade
// (SOURCEA/SOURCEB, SRI*), input C, bypass and asynchronous reset modes are not modelled: using
// them stops the simulation instead of simulating them wrongly. Registers start at zero (as
// after GSR). Written from the Lattice ECP5 sysDSP usage guide (TN1267).
module MULT18X18D (
    input  A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
    input  B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
    input  C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17,
    input  SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input  CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
    input  SRIA0, SRIA1, SRIA2, SRIA3, SRIA4, SRIA5, SRIA6, SRIA7, SRIA8, SRIA9, SRIA10, SRIA11, SRIA12, SRIA13, SRIA14, SRIA15, SRIA16, SRIA17,
    input  SRIB0, SRIB1, SRIB2, SRIB3, SRIB4, SRIB5, SRIB6, SRIB7, SRIB8, SRIB9, SRIB10, SRIB11, SRIB12, SRIB13, SRIB14, SRIB15, SRIB16, SRIB17,
    output SROA0, SROA1, SROA2, SROA3, SROA4, SROA5, SROA6, SROA7, SROA8, SROA9, SROA10, SROA11, SROA12, SROA13, SROA14, SROA15, SROA16, SROA17,
    output SROB0, SROB1, SROB2, SROB3, SROB4, SROB5, SROB6, SROB7, SROB8, SROB9, SROB10, SROB11, SROB12, SROB13, SROB14, SROB15, SROB16, SROB17,
    output ROA0, ROA1, ROA2, ROA3, ROA4, ROA5, ROA6, ROA7, ROA8, ROA9, ROA10, ROA11, ROA12, ROA13, ROA14, ROA15, ROA16, ROA17,
    output ROB0, ROB1, ROB2, ROB3, ROB4, ROB5, ROB6, ROB7, ROB8, ROB9, ROB10, ROB11, ROB12, ROB13, ROB14, ROB15, ROB16, ROB17,
    output ROC0, ROC1, ROC2, ROC3, ROC4, ROC5, ROC6, ROC7, ROC8, ROC9, ROC10, ROC11, ROC12, ROC13, ROC14, ROC15, ROC16, ROC17,
    output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17, P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34, P35,
    output SIGNEDP
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    wire [3:0] clk = {CLK3, CLK2, CLK1, CLK0};
    wire [3:0] ce = {CE3, CE2, CE1, CE0};
    wire [3:0] rst = {RST3, RST2, RST1, RST0};
    wire [17:0] a_in = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b_in = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    wire [17:0] a, b;
    wire [35:0] p_pipe, p_out;
    MULT18X18D_register #(.WIDTH(18), .CLK(REG_INPUTA_CLK), .CE(REG_INPUTA_CE), .RST(REG_INPUTA_RST))
        reg_a (.clk(clk), .ce(ce), .rst(rst), .d(a_in), .q(a));
    MULT18X18D_register #(.WIDTH(18), .CLK(REG_INPUTB_CLK), .CE(REG_INPUTB_CE), .RST(REG_INPUTB_RST))
        reg_b (.clk(clk), .ce(ce), .rst(rst), .d(b_in), .q(b));
    // the signedness controls travel with their operands (registered with them)
    wire sign_a, sign_b;
    MULT18X18D_register #(.WIDTH(1), .CLK(REG_INPUTA_CLK), .CE(REG_INPUTA_CE), .RST(REG_INPUTA_RST))
        reg_sign_a (.clk(clk), .ce(ce), .rst(rst), .d(SIGNEDA), .q(sign_a));
    MULT18X18D_register #(.WIDTH(1), .CLK(REG_INPUTB_CLK), .CE(REG_INPUTB_CE), .RST(REG_INPUTB_RST))
        reg_sign_b (.clk(clk), .ce(ce), .rst(rst), .d(SIGNEDB), .q(sign_b));
    wire signed [18:0] sa = {sign_a & a[17], a};
    wire signed [18:0] sb = {sign_b & b[17], b};
    wire signed [37:0] product = sa * sb;
    MULT18X18D_register #(.WIDTH(36), .CLK(REG_PIPELINE_CLK), .CE(REG_PIPELINE_CE), .RST(REG_PIPELINE_RST))
        reg_pipe (.clk(clk), .ce(ce), .rst(rst), .d(product[35:0]), .q(p_pipe));
    MULT18X18D_register #(.WIDTH(36), .CLK(REG_OUTPUT_CLK), .CE(REG_OUTPUT_CE), .RST(REG_OUTPUT_RST))
        reg_out (.clk(clk), .ce(ce), .rst(rst), .d(p_pipe), .q(p_out));
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p_out;
    assign SIGNEDP = sign_a | sign_b;

    initial begin
        if (REG_INPUTC_CLK != "NONE" || MULT_BYPASS != "DISABLED" || RESETMODE != "SYNC") begin
            $display("MULT18X18D model: input C, bypass and asynchronous reset are not modelled (%m)");
            $fatal(1);
        end
    end
    always @* begin
        if (SOURCEA === 1'b1 || SOURCEB === 1'b1) begin
            $display("MULT18X18D model: the cascade inputs (SOURCEA/SOURCEB) are not modelled (%m)");
            $fatal(1);
        end
    end
endmodule

// One optional register of the MULT18X18D model: a wire when CLK is "NONE", else a register on
// clock CLK ("CLK0".."CLK3") with clock enable CE ("CE0".."CE3") and synchronous reset RST
// ("RST0".."RST3").
module MULT18X18D_register #(
    parameter WIDTH = 18,
    parameter CLK = "NONE",
    parameter CE = "CE0",
    parameter RST = "RST0"
) (
    input [3:0] clk,
    input [3:0] ce,
    input [3:0] rst,
    input [WIDTH-1:0] d,
    output [WIDTH-1:0] q
);
    localparam integer C = CLK == "CLK0" ? 0 : CLK == "CLK1" ? 1 : CLK == "CLK2" ? 2 : CLK == "CLK3" ? 3 : -1;
    localparam integer E = CE == "CE0" ? 0 : CE == "CE1" ? 1 : CE == "CE2" ? 2 : CE == "CE3" ? 3 : -1;
    localparam integer R = RST == "RST0" ? 0 : RST == "RST1" ? 1 : RST == "RST2" ? 2 : RST == "RST3" ? 3 : -1;
    generate
        if (CLK == "NONE") begin : wire_through
            assign q = d;
        end else begin : registered
            reg [WIDTH-1:0] r = {WIDTH{1'b0}};
            always @(posedge clk[C])
                if (rst[R]) r <= {WIDTH{1'b0}};
                else if (ce[E]) r <= d;
            assign q = r;
            initial if (C < 0 || E < 0 || R < 0) begin
                $display("MULT18X18D model: bad register setting %s/%s/%s (%m)", CLK, CE, RST);
                $fatal(1);
            end
        end
    endgenerate
endmodule
