package clientconf

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
)

// This file reads back the QR codes EncodeQR draws, so that Render can prove
// a PNG holds the intended text before it is written. It is not a camera
// decoder: it needs an upright, unrotated, noise-free symbol drawn at a whole
// number of pixels per module on a light background, and it rejects anything
// else rather than correct errors. What it does check is everything a
// scanner relies on: the function patterns, both copies of the format
// information, the version information, every block's Reed-Solomon
// codewords, and the segment structure of the data (ISO/IEC 18004).

// ReadQR returns the text of a QR code PNG drawn as EncodeQR draws it.
func ReadQR(pngData []byte) (string, error) {
	// Check the size before decoding: the decoder allocates what the header
	// claims.
	cfg, err := png.DecodeConfig(bytes.NewReader(pngData))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadQR, err)
	}
	if cfg.Width > maxQRImageSide || cfg.Height > maxQRImageSide {
		return "", fmt.Errorf("%w: %dx%d image is larger than %d px a side", ErrBadQR, cfg.Width, cfg.Height, maxQRImageSide)
	}
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadQR, err)
	}
	m, err := sampleModules(img)
	if err != nil {
		return "", err
	}
	return readSymbol(m)
}

// maxQRImageSide bounds the images ReadQR accepts: the largest symbol (177
// modules plus the quiet zone) at 16 px a module.
const maxQRImageSide = (177 + 8) * 16

// isDark reports whether a pixel is dark (luminance below half).
func isDark(c color.Color) bool {
	return color.GrayModel.Convert(c).(color.Gray).Y < 128
}

// sampleModules finds the symbol in img and returns its modules (true =
// dark), [row][column]. The top-left dark pixel must be the corner of the
// top-left finder pattern, whose 7-module top edge gives the module size.
func sampleModules(img image.Image) ([][]bool, error) {
	b := img.Bounds()
	x0, y0 := -1, -1
find:
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if isDark(img.At(x, y)) {
				x0, y0 = x, y
				break find
			}
		}
	}
	if x0 < 0 {
		return nil, fmt.Errorf("%w: the image has no dark pixel", ErrBadQR)
	}
	run := 0
	for x := x0; x < b.Max.X && isDark(img.At(x, y0)); x++ {
		run++
	}
	if run%7 != 0 {
		return nil, fmt.Errorf("%w: finder pattern edge of %d px is not 7 modules", ErrBadQR, run)
	}
	px := run / 7
	x1 := x0
	for x := x0; x < b.Max.X; x++ {
		if isDark(img.At(x, y0)) {
			x1 = x
		}
	}
	width := x1 - x0 + 1
	if width%px != 0 {
		return nil, fmt.Errorf("%w: symbol width %d px is not a whole number of %d px modules", ErrBadQR, width, px)
	}
	n := width / px
	if n < 21 || n > 177 || (n-17)%4 != 0 {
		return nil, fmt.Errorf("%w: %d modules is not a QR symbol size", ErrBadQR, n)
	}
	if y0+n*px > b.Max.Y {
		return nil, fmt.Errorf("%w: the symbol does not fit in the image", ErrBadQR)
	}
	m := make([][]bool, n)
	for r := range m {
		m[r] = make([]bool, n)
		for c := range m[r] {
			m[r][c] = isDark(img.At(x0+c*px+px/2, y0+r*px+px/2))
		}
	}
	// Every pixel must agree with its module, and everything outside the
	// symbol must be light: a crisp drawing, nothing else in the image.
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			want := false
			if x >= x0 && x < x0+n*px && y >= y0 && y < y0+n*px {
				want = m[(y-y0)/px][(x-x0)/px]
			}
			if isDark(img.At(x, y)) != want {
				return nil, fmt.Errorf("%w: pixel (%d,%d) does not match the module grid", ErrBadQR, x, y)
			}
		}
	}
	return m, nil
}

// qrBlocks is the error correction structure of one version and level:
// EC codewords per block and the number of blocks (ISO/IEC 18004 Table 9).
type qrBlocks struct{ ecPerBlock, blocks int }

// qrECTable is indexed [version][level], levels in the order L, M, Q, H.
// The test compares it with gozxing's table.
var qrECTable = [41][4]qrBlocks{
	{},
	{{7, 1}, {10, 1}, {13, 1}, {17, 1}},
	{{10, 1}, {16, 1}, {22, 1}, {28, 1}},
	{{15, 1}, {26, 1}, {18, 2}, {22, 2}},
	{{20, 1}, {18, 2}, {26, 2}, {16, 4}},
	{{26, 1}, {24, 2}, {18, 4}, {22, 4}},
	{{18, 2}, {16, 4}, {24, 4}, {28, 4}},
	{{20, 2}, {18, 4}, {18, 6}, {26, 5}},
	{{24, 2}, {22, 4}, {22, 6}, {26, 6}},
	{{30, 2}, {22, 5}, {20, 8}, {24, 8}},
	{{18, 4}, {26, 5}, {24, 8}, {28, 8}},
	{{20, 4}, {30, 5}, {28, 8}, {24, 11}},
	{{24, 4}, {22, 8}, {26, 10}, {28, 11}},
	{{26, 4}, {22, 9}, {24, 12}, {22, 16}},
	{{30, 4}, {24, 9}, {20, 16}, {24, 16}},
	{{22, 6}, {24, 10}, {30, 12}, {24, 18}},
	{{24, 6}, {28, 10}, {24, 17}, {30, 16}},
	{{28, 6}, {28, 11}, {28, 16}, {28, 19}},
	{{30, 6}, {26, 13}, {28, 18}, {28, 21}},
	{{28, 7}, {26, 14}, {26, 21}, {26, 25}},
	{{28, 8}, {26, 16}, {30, 20}, {28, 25}},
	{{28, 8}, {26, 17}, {28, 23}, {30, 25}},
	{{28, 9}, {28, 17}, {30, 23}, {24, 34}},
	{{30, 9}, {28, 18}, {30, 25}, {30, 30}},
	{{30, 10}, {28, 20}, {30, 27}, {30, 32}},
	{{26, 12}, {28, 21}, {30, 29}, {30, 35}},
	{{28, 12}, {28, 23}, {28, 34}, {30, 37}},
	{{30, 12}, {28, 25}, {30, 34}, {30, 40}},
	{{30, 13}, {28, 26}, {30, 35}, {30, 42}},
	{{30, 14}, {28, 28}, {30, 38}, {30, 45}},
	{{30, 15}, {28, 29}, {30, 40}, {30, 48}},
	{{30, 16}, {28, 31}, {30, 43}, {30, 51}},
	{{30, 17}, {28, 33}, {30, 45}, {30, 54}},
	{{30, 18}, {28, 35}, {30, 48}, {30, 57}},
	{{30, 19}, {28, 37}, {30, 51}, {30, 60}},
	{{30, 19}, {28, 38}, {30, 53}, {30, 63}},
	{{30, 20}, {28, 40}, {30, 56}, {30, 66}},
	{{30, 21}, {28, 43}, {30, 59}, {30, 70}},
	{{30, 22}, {28, 45}, {30, 62}, {30, 74}},
	{{30, 24}, {28, 47}, {30, 65}, {30, 77}},
	{{30, 25}, {28, 49}, {30, 68}, {30, 81}},
}

// qrLevelNames and qrLevelFormatBits are in qrECTable's level order; the
// format bits are the 2-bit codes of the format information.
var (
	qrLevelNames      = [4]string{"L", "M", "Q", "H"}
	qrLevelFormatBits = [4]int{1, 0, 3, 2}
)

// qrFormatWord returns the 15-bit format information for a level index and
// mask: a BCH(15,5) code with generator 0x537, XORed with 0x5412.
func qrFormatWord(level, mask int) int {
	data := qrLevelFormatBits[level]<<3 | mask
	rem := data
	for i := 0; i < 10; i++ {
		rem = rem<<1 ^ (rem>>9)*0x537
	}
	return (data<<10 | rem) ^ 0x5412
}

// qrVersionWord returns the 18-bit version information (versions 7 and up):
// a BCH(18,6) code with generator 0x1F25.
func qrVersionWord(version int) int {
	rem := version
	for i := 0; i < 12; i++ {
		rem = rem<<1 ^ (rem>>11)*0x1F25
	}
	return version<<12 | rem
}

// qrAlignmentCenters returns the row/column coordinates of the alignment
// pattern centres: evenly spaced (an even step) from the far side back to 6.
func qrAlignmentCenters(version int) []int {
	if version == 1 {
		return nil
	}
	n := version/7 + 2
	size := 17 + 4*version
	step := 26 // the one version the rule below does not give
	if version != 32 {
		step = (version*4 + n*2 + 1) / (n*2 - 2) * 2
	}
	out := make([]int, n)
	out[0] = 6
	for i, pos := n-1, size-7; i >= 1; i, pos = i-1, pos-step {
		out[i] = pos
	}
	return out
}

// qrFunctionPattern returns, for a version, which modules are function
// modules (everything but data) and the expected colour of those whose
// colour is fixed (finders, separators, timing, alignment, the dark module);
// format and version areas are marked as function modules but left false in
// the expected map, and are checked separately.
func qrFunctionPattern(version int) (isFunc, want [][]bool) {
	n := 17 + 4*version
	isFunc = make([][]bool, n)
	want = make([][]bool, n)
	for r := range isFunc {
		isFunc[r] = make([]bool, n)
		want[r] = make([]bool, n)
	}
	set := func(r, c int, dark bool) {
		if r >= 0 && r < n && c >= 0 && c < n {
			isFunc[r][c] = true
			want[r][c] = dark
		}
	}
	// Timing patterns first; finders and alignment overwrite their ends.
	for i := 0; i < n; i++ {
		set(6, i, i%2 == 0)
		set(i, 6, i%2 == 0)
	}
	// Finder patterns with their light separators.
	for _, o := range [][2]int{{3, 3}, {3, n - 4}, {n - 4, 3}} {
		for dr := -4; dr <= 4; dr++ {
			for dc := -4; dc <= 4; dc++ {
				d := max(abs(dr), abs(dc))
				set(o[0]+dr, o[1]+dc, d != 2 && d != 4)
			}
		}
	}
	// Alignment patterns, except where they would overlap a finder.
	centers := qrAlignmentCenters(version)
	for i, r := range centers {
		for j, c := range centers {
			last := len(centers) - 1
			if i == 0 && j == 0 || i == 0 && j == last || i == last && j == 0 {
				continue
			}
			for dr := -2; dr <= 2; dr++ {
				for dc := -2; dc <= 2; dc++ {
					set(r+dr, c+dc, max(abs(dr), abs(dc)) != 1)
				}
			}
		}
	}
	// Format information areas (values checked separately).
	for i := 0; i < 9; i++ {
		if i != 6 {
			set(8, i, false)
			set(i, 8, false)
		}
	}
	for i := 0; i < 8; i++ {
		set(8, n-1-i, false)
		set(n-1-i, 8, false)
	}
	// Version information areas.
	if version >= 7 {
		for i := 0; i < 18; i++ {
			a, b := n-11+i%3, i/3
			set(a, b, false)
			set(b, a, false)
		}
	}
	// The dark module.
	set(n-8, 8, true)
	return isFunc, want
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// readSymbol decodes a module matrix.
func readSymbol(m [][]bool) (string, error) {
	n := len(m)
	version := (n - 17) / 4
	isFunc, want := qrFunctionPattern(version)

	bit := func(r, c int) int {
		if m[r][c] {
			return 1
		}
		return 0
	}
	// Format information: two copies, both must be the same valid word.
	var f1, f2 int
	for i := 0; i <= 5; i++ {
		f1 |= bit(i, 8) << i
	}
	f1 |= bit(7, 8)<<6 | bit(8, 8)<<7 | bit(8, 7)<<8
	for i := 9; i < 15; i++ {
		f1 |= bit(8, 14-i) << i
	}
	for i := 0; i < 8; i++ {
		f2 |= bit(8, n-1-i) << i
	}
	for i := 8; i < 15; i++ {
		f2 |= bit(n-15+i, 8) << i
	}
	if f1 != f2 {
		return "", fmt.Errorf("%w: the two copies of the format information differ", ErrBadQR)
	}
	level, mask := -1, -1
	for l := 0; l < 4; l++ {
		for k := 0; k < 8; k++ {
			if qrFormatWord(l, k) == f1 {
				level, mask = l, k
			}
		}
	}
	if level < 0 {
		return "", fmt.Errorf("%w: invalid format information %015b", ErrBadQR, f1)
	}
	// Version information.
	if version >= 7 {
		vw := qrVersionWord(version)
		for i := 0; i < 18; i++ {
			a, b := n-11+i%3, i/3
			if bit(a, b) != vw>>i&1 || bit(b, a) != vw>>i&1 {
				return "", fmt.Errorf("%w: version information does not match a %dx%d symbol", ErrBadQR, n, n)
			}
		}
	}
	// Fixed function patterns.
	for r := 0; r < n; r++ {
		for c := 0; c < n; c++ {
			fixed := isFunc[r][c] && !isFormatOrVersion(version, r, c)
			if fixed && m[r][c] != want[r][c] {
				return "", fmt.Errorf("%w: function pattern module (%d,%d) is wrong", ErrBadQR, r, c)
			}
		}
	}
	// Data modules in placement order, unmasked, packed into codewords.
	var codewords []byte
	var cur byte
	nbits := 0
	for right := n - 1; right >= 1; right -= 2 {
		if right == 6 {
			right = 5
		}
		upward := (right+1)&2 == 0
		for v := 0; v < n; v++ {
			r := v
			if upward {
				r = n - 1 - v
			}
			for j := 0; j < 2; j++ {
				c := right - j
				if isFunc[r][c] {
					continue
				}
				b := m[r][c] != qrMask(mask, r, c)
				cur <<= 1
				if b {
					cur |= 1
				}
				nbits++
				if nbits == 8 {
					codewords = append(codewords, cur)
					cur, nbits = 0, 0
				}
			}
		}
	}
	// The leftover 0..7 remainder bits carry nothing.
	data, err := qrDeinterleave(codewords, qrECTable[version][level])
	if err != nil {
		return "", err
	}
	return qrParseSegments(data, version)
}

// isFormatOrVersion reports whether (r, c) holds format or version
// information, whose values readSymbol checks on their own.
func isFormatOrVersion(version, r, c int) bool {
	n := 17 + 4*version
	switch {
	case r == n-8 && c == 8: // the dark module is fixed
		return false
	case r == 8 && (c <= 8 || c >= n-8), c == 8 && (r <= 8 || r >= n-8):
		return !(r == 6 || c == 6) // timing modules are fixed
	case version >= 7 && (r < 6 && c >= n-11 && c < n-8 || c < 6 && r >= n-11 && r < n-8):
		return true
	}
	return false
}

// qrMask reports whether data mask pattern k inverts the module (r, c).
func qrMask(k, r, c int) bool {
	switch k {
	case 0:
		return (r+c)%2 == 0
	case 1:
		return r%2 == 0
	case 2:
		return c%3 == 0
	case 3:
		return (r+c)%3 == 0
	case 4:
		return (r/2+c/3)%2 == 0
	case 5:
		return r*c%2+r*c%3 == 0
	case 6:
		return (r*c%2+r*c%3)%2 == 0
	default:
		return ((r+c)%2+r*c%3)%2 == 0
	}
}

// qrDeinterleave splits the codewords into blocks, checks each block's
// Reed-Solomon codewords and returns the data codewords in order.
func qrDeinterleave(cw []byte, bl qrBlocks) ([]byte, error) {
	total := len(cw)
	short := bl.blocks - total%bl.blocks // blocks with one data codeword less
	shortLen := total / bl.blocks
	dataLen := func(b int) int {
		if b < short {
			return shortLen - bl.ecPerBlock
		}
		return shortLen - bl.ecPerBlock + 1
	}
	if shortLen-bl.ecPerBlock < 1 {
		return nil, fmt.Errorf("%w: inconsistent block structure", ErrBadQR)
	}
	blocks := make([][]byte, bl.blocks)
	k := 0
	for i := 0; i <= shortLen-bl.ecPerBlock; i++ {
		for b := range blocks {
			if i < dataLen(b) {
				blocks[b] = append(blocks[b], cw[k])
				k++
			}
		}
	}
	ecs := make([][]byte, bl.blocks)
	for i := 0; i < bl.ecPerBlock; i++ {
		for b := range ecs {
			ecs[b] = append(ecs[b], cw[k])
			k++
		}
	}
	gen := rsGenerator(bl.ecPerBlock)
	var out []byte
	for b := range blocks {
		if !bytes.Equal(rsRemainder(blocks[b], gen), ecs[b]) {
			return nil, fmt.Errorf("%w: block %d fails its Reed-Solomon check", ErrBadQR, b)
		}
		out = append(out, blocks[b]...)
	}
	return out, nil
}

// gfMul multiplies in GF(2^8) modulo x^8+x^4+x^3+x^2+1 (0x11D).
func gfMul(a, b byte) byte {
	var p byte
	for ; b != 0; b >>= 1 {
		if b&1 != 0 {
			p ^= a
		}
		carry := a & 0x80
		a <<= 1
		if carry != 0 {
			a ^= 0x1D
		}
	}
	return p
}

// rsGenerator returns the coefficients (highest degree first, leading 1
// omitted) of the product of (x - 2^i) for i in 0..degree-1.
func rsGenerator(degree int) []byte {
	g := make([]byte, degree)
	g[degree-1] = 1
	root := byte(1)
	for i := 0; i < degree; i++ {
		for j := range g {
			g[j] = gfMul(g[j], root)
			if j+1 < len(g) {
				g[j] ^= g[j+1]
			}
		}
		root = gfMul(root, 2)
	}
	return g
}

// rsRemainder returns data·x^degree mod generator: the EC codewords.
func rsRemainder(data, gen []byte) []byte {
	rem := make([]byte, len(gen))
	for _, d := range data {
		f := d ^ rem[0]
		copy(rem, rem[1:])
		rem[len(rem)-1] = 0
		for i := range rem {
			rem[i] ^= gfMul(gen[i], f)
		}
	}
	return rem
}

const qrAlphanumeric = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// qrParseSegments decodes numeric, alphanumeric and byte segments up to the
// terminator. Other modes (ECI, Kanji, structured append) are rejected:
// EncodeQR never writes them.
func qrParseSegments(data []byte, version int) (string, error) {
	pos := 0
	avail := len(data) * 8
	read := func(n int) (int, bool) {
		if pos+n > avail {
			return 0, false
		}
		v := 0
		for i := 0; i < n; i++ {
			v = v<<1 | int(data[(pos+i)/8]>>(7-(pos+i)%8)&1)
		}
		pos += n
		return v, true
	}
	size := 0 // count field width index: versions 1-9, 10-26, 27-40
	if version >= 27 {
		size = 2
	} else if version >= 10 {
		size = 1
	}
	var out []byte
	for avail-pos >= 4 {
		mode, _ := read(4)
		var count int
		var ok bool
		switch mode {
		case 0:
			return string(out), nil
		case 1:
			if count, ok = read([3]int{10, 12, 14}[size]); !ok {
				return "", fmt.Errorf("%w: truncated numeric segment", ErrBadQR)
			}
			for ; count > 0; count -= 3 {
				digits, bits := min(count, 3), [4]int{0, 4, 7, 10}[min(count, 3)]
				v, ok := read(bits)
				if !ok || v >= [4]int{1, 10, 100, 1000}[digits] {
					return "", fmt.Errorf("%w: bad numeric segment", ErrBadQR)
				}
				out = fmt.Appendf(out, "%0*d", digits, v)
			}
		case 2:
			if count, ok = read([3]int{9, 11, 13}[size]); !ok {
				return "", fmt.Errorf("%w: truncated alphanumeric segment", ErrBadQR)
			}
			for ; count >= 2; count -= 2 {
				v, ok := read(11)
				if !ok || v >= 45*45 {
					return "", fmt.Errorf("%w: bad alphanumeric segment", ErrBadQR)
				}
				out = append(out, qrAlphanumeric[v/45], qrAlphanumeric[v%45])
			}
			if count == 1 {
				v, ok := read(6)
				if !ok || v >= 45 {
					return "", fmt.Errorf("%w: bad alphanumeric segment", ErrBadQR)
				}
				out = append(out, qrAlphanumeric[v])
			}
		case 4:
			if count, ok = read([3]int{8, 16, 16}[size]); !ok {
				return "", fmt.Errorf("%w: truncated byte segment", ErrBadQR)
			}
			for ; count > 0; count-- {
				v, ok := read(8)
				if !ok {
					return "", fmt.Errorf("%w: truncated byte segment", ErrBadQR)
				}
				out = append(out, byte(v))
			}
		default:
			return "", fmt.Errorf("%w: unsupported segment mode %04b", ErrBadQR, mode)
		}
	}
	// Data that fills the symbol exactly may omit the terminator.
	return string(out), nil
}
