// Behavioural simulation model of the ECP5 DP16KD block RAM (18 Kb), for the read-only use that
// synthesis makes of it in our cores: a ROM read on port B, synchronously (REGMODE "NOREG": the
// word addressed at a clock edge with CEB high appears on the outputs after it), either 36 bits
// wide (DATA_WIDTH_B = 36: word address ADB13..ADB5, the low 18 bits on DOA and the high 18 on
// DOB), 18 wide (ADB13..ADB4, on DOB) or 9 wide (ADB13..ADB3, on DOB8..DOB0); port A reads the
// same way at 18 or 9 bits when it is not the write side of a 36-bit pair. The contents come from
// INITVAL_00..INITVAL_3F: 1,024 words of 18 bits, 16 per parameter, each in a 20-bit field (the
// layout Yosys's brams_map_16kd.v writes; a 36-bit word w is 18-bit words 2w and 2w+1). Yosys
// ships only a blackbox of this cell. Writes, output registers, chip selects other than 0b000,
// resets and narrower widths are not modelled: using them stops the simulation instead of
// simulating them wrongly.
module DP16KD (
    input  DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
    input  ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
    input  CEA, OCEA, CLKA, WEA, RSTA,
    input  CSA2, CSA1, CSA0,
    output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
    input  DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
    input  ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
    input  CEB, OCEB, CLKB, WEB, RSTB,
    input  CSB2, CSB1, CSB0,
    output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
    parameter DATA_WIDTH_A = 18;
    parameter DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";
    parameter CLKAMUX = "CLKA";
    parameter CLKBMUX = "CLKB";
    parameter GSR = "ENABLED";
    parameter INIT_DATA = "STATIC";
    parameter WID = 0;
    parameter INITVAL_00 = 320'h0;
    parameter INITVAL_01 = 320'h0;
    parameter INITVAL_02 = 320'h0;
    parameter INITVAL_03 = 320'h0;
    parameter INITVAL_04 = 320'h0;
    parameter INITVAL_05 = 320'h0;
    parameter INITVAL_06 = 320'h0;
    parameter INITVAL_07 = 320'h0;
    parameter INITVAL_08 = 320'h0;
    parameter INITVAL_09 = 320'h0;
    parameter INITVAL_0A = 320'h0;
    parameter INITVAL_0B = 320'h0;
    parameter INITVAL_0C = 320'h0;
    parameter INITVAL_0D = 320'h0;
    parameter INITVAL_0E = 320'h0;
    parameter INITVAL_0F = 320'h0;
    parameter INITVAL_10 = 320'h0;
    parameter INITVAL_11 = 320'h0;
    parameter INITVAL_12 = 320'h0;
    parameter INITVAL_13 = 320'h0;
    parameter INITVAL_14 = 320'h0;
    parameter INITVAL_15 = 320'h0;
    parameter INITVAL_16 = 320'h0;
    parameter INITVAL_17 = 320'h0;
    parameter INITVAL_18 = 320'h0;
    parameter INITVAL_19 = 320'h0;
    parameter INITVAL_1A = 320'h0;
    parameter INITVAL_1B = 320'h0;
    parameter INITVAL_1C = 320'h0;
    parameter INITVAL_1D = 320'h0;
    parameter INITVAL_1E = 320'h0;
    parameter INITVAL_1F = 320'h0;
    parameter INITVAL_20 = 320'h0;
    parameter INITVAL_21 = 320'h0;
    parameter INITVAL_22 = 320'h0;
    parameter INITVAL_23 = 320'h0;
    parameter INITVAL_24 = 320'h0;
    parameter INITVAL_25 = 320'h0;
    parameter INITVAL_26 = 320'h0;
    parameter INITVAL_27 = 320'h0;
    parameter INITVAL_28 = 320'h0;
    parameter INITVAL_29 = 320'h0;
    parameter INITVAL_2A = 320'h0;
    parameter INITVAL_2B = 320'h0;
    parameter INITVAL_2C = 320'h0;
    parameter INITVAL_2D = 320'h0;
    parameter INITVAL_2E = 320'h0;
    parameter INITVAL_2F = 320'h0;
    parameter INITVAL_30 = 320'h0;
    parameter INITVAL_31 = 320'h0;
    parameter INITVAL_32 = 320'h0;
    parameter INITVAL_33 = 320'h0;
    parameter INITVAL_34 = 320'h0;
    parameter INITVAL_35 = 320'h0;
    parameter INITVAL_36 = 320'h0;
    parameter INITVAL_37 = 320'h0;
    parameter INITVAL_38 = 320'h0;
    parameter INITVAL_39 = 320'h0;
    parameter INITVAL_3A = 320'h0;
    parameter INITVAL_3B = 320'h0;
    parameter INITVAL_3C = 320'h0;
    parameter INITVAL_3D = 320'h0;
    parameter INITVAL_3E = 320'h0;
    parameter INITVAL_3F = 320'h0;

    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    reg [17:0] words [0:1023];
    reg [17:0] doa = 18'd0, dob = 18'd0;
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;

    task load(input integer k, input [319:0] value);
        integer i;
        for (i = 0; i < 16; i = i + 1) words[k * 16 + i] = value[i * 20 +: 18];
    endtask

    function [17:0] read(input integer width, input [13:0] address);
        reg [17:0] word;
        begin
            if (width == 18) read = words[address[13:4]];
            else begin  // 9 bits: half of an 18-bit word
                word = words[address[13:4]];
                read = {9'd0, address[3] ? word[17:9] : word[8:0]};
            end
        end
    endfunction

    function modelled(input integer width);
        modelled = width == 9 || width == 18;
    endfunction

    initial begin
        load(0, INITVAL_00);
        load(1, INITVAL_01);
        load(2, INITVAL_02);
        load(3, INITVAL_03);
        load(4, INITVAL_04);
        load(5, INITVAL_05);
        load(6, INITVAL_06);
        load(7, INITVAL_07);
        load(8, INITVAL_08);
        load(9, INITVAL_09);
        load(10, INITVAL_0A);
        load(11, INITVAL_0B);
        load(12, INITVAL_0C);
        load(13, INITVAL_0D);
        load(14, INITVAL_0E);
        load(15, INITVAL_0F);
        load(16, INITVAL_10);
        load(17, INITVAL_11);
        load(18, INITVAL_12);
        load(19, INITVAL_13);
        load(20, INITVAL_14);
        load(21, INITVAL_15);
        load(22, INITVAL_16);
        load(23, INITVAL_17);
        load(24, INITVAL_18);
        load(25, INITVAL_19);
        load(26, INITVAL_1A);
        load(27, INITVAL_1B);
        load(28, INITVAL_1C);
        load(29, INITVAL_1D);
        load(30, INITVAL_1E);
        load(31, INITVAL_1F);
        load(32, INITVAL_20);
        load(33, INITVAL_21);
        load(34, INITVAL_22);
        load(35, INITVAL_23);
        load(36, INITVAL_24);
        load(37, INITVAL_25);
        load(38, INITVAL_26);
        load(39, INITVAL_27);
        load(40, INITVAL_28);
        load(41, INITVAL_29);
        load(42, INITVAL_2A);
        load(43, INITVAL_2B);
        load(44, INITVAL_2C);
        load(45, INITVAL_2D);
        load(46, INITVAL_2E);
        load(47, INITVAL_2F);
        load(48, INITVAL_30);
        load(49, INITVAL_31);
        load(50, INITVAL_32);
        load(51, INITVAL_33);
        load(52, INITVAL_34);
        load(53, INITVAL_35);
        load(54, INITVAL_36);
        load(55, INITVAL_37);
        load(56, INITVAL_38);
        load(57, INITVAL_39);
        load(58, INITVAL_3A);
        load(59, INITVAL_3B);
        load(60, INITVAL_3C);
        load(61, INITVAL_3D);
        load(62, INITVAL_3E);
        load(63, INITVAL_3F);
        if (!(DATA_WIDTH_B == 36 ? DATA_WIDTH_A == 36 : modelled(DATA_WIDTH_B))
                || !(DATA_WIDTH_A == 36 || modelled(DATA_WIDTH_A))
                || REGMODE_A != "NOREG" || REGMODE_B != "NOREG"
                || CSDECODE_A != "0b000" || CSDECODE_B != "0b000"
                || CLKAMUX != "CLKA" || CLKBMUX != "CLKB") begin
            $display("DP16KD %m: DATA_WIDTH_A %0d, DATA_WIDTH_B %0d, REGMODE %0s/%0s, CSDECODE %0s/%0s, CLK*MUX %0s/%0s: only the ROM uses described at the top of dp16kd.v are modelled",
                     DATA_WIDTH_A, DATA_WIDTH_B, REGMODE_A, REGMODE_B, CSDECODE_A, CSDECODE_B, CLKAMUX, CLKBMUX);
            $fatal(1);
        end
    end

    always @(posedge CLKA) begin
        if (CEA && (WEA && DATA_WIDTH_A != 36 || RSTA || {CSA2, CSA1, CSA0} != 3'b000)) begin
            $display("DP16KD %m: a write, reset or chip select on port A is not modelled");
            $fatal(1);
        end
        if (CEA && DATA_WIDTH_A == 36) begin
            $display("DP16KD %m: a write on the 36-bit write port is not modelled");
            $fatal(1);
        end
        if (CEA && DATA_WIDTH_A != 36) doa <= read(DATA_WIDTH_A, ada);
    end

    always @(posedge CLKB) begin
        if (CEB && (WEB || RSTB || {CSB2, CSB1, CSB0} != 3'b000)) begin
            $display("DP16KD %m: a write, reset or chip select on port B is not modelled");
            $fatal(1);
        end
        if (CEB && DATA_WIDTH_B == 36) begin
            doa <= words[{adb[13:5], 1'b0}];
            dob <= words[{adb[13:5], 1'b1}];
        end else if (CEB) dob <= read(DATA_WIDTH_B, adb);
    end
endmodule
