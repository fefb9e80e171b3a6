package tle

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Two-line element set format (columns 1-based, as the standard numbers
// them; each element line is exactly 69 characters, the last a mod-10
// checksum over the first 68: digits count their value, '-' counts 1):
//
//	line 0 (optional)  name, up to 24 characters (a leading "0 " is dropped)
//	line 1  col  1     '1'
//	        3-7        satellite number (Alpha-5 allowed: A0001 = 100001)
//	        8          classification (U, C, S)
//	        10-17      international designator: year 10-11, launch 12-14, piece 15-17
//	        19-32      epoch: year 19-20 (57-99 = 19xx, else 20xx), day of year 21-32
//	        34-43      first derivative of mean motion / 2 (rev/day²)
//	        45-52      second derivative of mean motion / 6, implied point: " 12345-3" = 0.12345e-3
//	        54-61      B* drag term, same implied-point form
//	        63         ephemeris type
//	        65-68      element set number
//	        69         checksum
//	line 2  col  1     '2'
//	        3-7        satellite number (must match line 1)
//	        9-16       inclination (deg)
//	        18-25      right ascension of the ascending node (deg)
//	        27-33      eccentricity, implied leading "0."
//	        35-42      argument of perigee (deg)
//	        44-51      mean anomaly (deg)
//	        53-63      mean motion (rev/day)
//	        64-68      revolution number at epoch
//	        69         checksum
const lineLen = 69

var (
	// ErrChecksum is returned (inside a *ParseError) when an element line's
	// mod-10 checksum does not match column 69.
	ErrChecksum = errors.New("tle: checksum mismatch")
	// ErrSyntax is returned (inside a *ParseError) for a malformed line: wrong
	// length, wrong line number, unparsable field, mismatched satellite
	// numbers, or a missing line.
	ErrSyntax = errors.New("tle: syntax error")
)

// ParseError reports which input line failed and why.
type ParseError struct {
	Line int    // 1-based line number in the input (0 when parsing lines directly)
	Col  int    // 1-based column of the bad field, 0 for the whole line
	Text string // the offending line
	Err  error  // ErrChecksum or ErrSyntax, wrapped with detail
}

func (e *ParseError) Error() string {
	loc := "tle"
	if e.Line > 0 {
		loc = fmt.Sprintf("tle: line %d", e.Line)
	}
	if e.Col > 0 {
		loc += fmt.Sprintf(" col %d", e.Col)
	}
	return fmt.Sprintf("%s: %v: %q", loc, e.Err, e.Text)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Set is one parsed element set: the Record stored by the OOR plus the
// fields it does not keep.
type Set struct {
	Name           string
	Record         Record
	Classification byte
	EpochTime      time.Time // Record.Epoch decoded to UTC
	MeanMotionDot  float64   // first derivative of mean motion / 2, rev/day²
	MeanMotionDDot float64   // second derivative of mean motion / 6, rev/day³
	EphemerisType  byte
}

// Checksum returns the mod-10 checksum of the first 68 characters of line.
func Checksum(line string) int {
	sum := 0
	for i := 0; i < len(line) && i < lineLen-1; i++ {
		switch c := line[i]; {
		case c >= '0' && c <= '9':
			sum += int(c - '0')
		case c == '-':
			sum++
		}
	}
	return sum % 10
}

type lineErr struct {
	col int
	err error
}

func synErr(col int, format string, a ...any) *lineErr {
	return &lineErr{col, fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, a...)...)}
}

// field returns columns [from, to] (1-based, inclusive), trimmed.
func field(l string, from, to int) string { return strings.TrimSpace(l[from-1 : to]) }

func parseFloat(l string, from, to int, what string) (float64, *lineErr) {
	s := field(l, from, to)
	if s == "" {
		return 0, synErr(from, "empty %s", what)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, synErr(from, "bad %s %q", what, s)
	}
	return f, nil
}

func parseUint(l string, from, to int, what string) (uint64, *lineErr) {
	s := field(l, from, to)
	if s == "" {
		return 0, nil // blank counts as zero (element set, rev number)
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, synErr(from, "bad %s %q", what, s)
	}
	return v, nil
}

// parseExp decodes the implied-point exponent form " 12345-3" = 0.12345e-3
// in columns [from, from+7].
func parseExp(l string, from int, what string) (float64, *lineErr) {
	s := l[from-1 : from+7]
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	sign := 1.0
	switch s[0] {
	case '-':
		sign = -1
	case ' ', '+':
	default:
		return 0, synErr(from, "bad %s %q", what, s)
	}
	mant, exp := strings.TrimSpace(s[1:6]), s[6:8]
	m, err := strconv.ParseUint(mant, 10, 32)
	if err != nil || len(mant) == 0 {
		return 0, synErr(from, "bad %s mantissa %q", what, s)
	}
	if (exp[0] != '-' && exp[0] != '+' && exp[0] != ' ') || exp[1] < '0' || exp[1] > '9' {
		return 0, synErr(from+6, "bad %s exponent %q", what, s)
	}
	e := int(exp[1] - '0')
	if exp[0] == '-' {
		e = -e
	}
	return sign * float64(m) / math.Pow10(len(mant)) * math.Pow10(e), nil
}

// parseSatnum decodes a 5-column catalog number, including Alpha-5
// (a letter A-Z without I and O for the leading digit, A = 10).
func parseSatnum(l string, from int) (uint32, *lineErr) {
	s := strings.TrimSpace(l[from-1 : from+4])
	if s == "" {
		return 0, synErr(from, "empty satellite number")
	}
	lead := uint32(0)
	if c := s[0]; c >= 'A' && c <= 'Z' {
		if c == 'I' || c == 'O' || len(s) != 5 {
			return 0, synErr(from, "bad Alpha-5 satellite number %q", s)
		}
		lead = uint32(c-'A') + 10
		if c > 'I' {
			lead--
		}
		if c > 'O' {
			lead--
		}
		s = s[1:]
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, synErr(from, "bad satellite number %q", s)
	}
	if lead > 0 {
		return lead*10000 + uint32(v), nil
	}
	return uint32(v), nil
}

// EpochTime converts the YYDDD.dddddddd epoch of line 1 to UTC (two-digit
// years 57-99 are 1957-1999, 00-56 are 2000-2056; day 1.0 is 1 January 00:00).
func EpochTime(epoch float64) time.Time {
	yy := int(epoch / 1000)
	day := epoch - float64(yy*1000)
	year := 2000 + yy
	if yy >= 57 {
		year = 1900 + yy
	}
	start := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
	return start.Add(time.Duration(math.Round((day-1)*86400e6)) * time.Microsecond)
}

func checkLine(l string, num byte) *lineErr {
	if len(l) != lineLen {
		return synErr(0, "element line is %d characters, want %d", len(l), lineLen)
	}
	if l[0] != num || l[1] != ' ' {
		return synErr(1, "expected line %c", num)
	}
	c := l[lineLen-1]
	if c < '0' || c > '9' {
		return synErr(lineLen, "checksum %q is not a digit", c)
	}
	if want := Checksum(l); int(c-'0') != want {
		return &lineErr{lineLen, fmt.Errorf("%w: line says %c, computed %d", ErrChecksum, c, want)}
	}
	return nil
}

func parseLine1(l string, s *Set) *lineErr {
	if e := checkLine(l, '1'); e != nil {
		return e
	}
	var e *lineErr
	if s.Record.NoradID, e = parseSatnum(l, 3); e != nil {
		return e
	}
	s.Classification = l[7]
	s.Record.SetDesignator(field(l, 10, 17))
	if s.Record.Epoch, e = parseFloat(l, 19, 32, "epoch"); e != nil {
		return e
	}
	if s.Record.Epoch < 0 || s.Record.Epoch >= 100000 || math.Mod(s.Record.Epoch, 1000) < 1 {
		return synErr(19, "epoch %v out of range", s.Record.Epoch)
	}
	s.EpochTime = EpochTime(s.Record.Epoch)
	if s.MeanMotionDot, e = parseFloat(l, 34, 43, "mean motion derivative"); e != nil {
		return e
	}
	if s.MeanMotionDDot, e = parseExp(l, 45, "second derivative"); e != nil {
		return e
	}
	if s.Record.BStar, e = parseExp(l, 54, "B*"); e != nil {
		return e
	}
	s.EphemerisType = l[62]
	es, e := parseUint(l, 65, 68, "element set number")
	if e != nil {
		return e
	}
	s.Record.ElementSet = uint16(es)
	return nil
}

func parseLine2(l string, s *Set) *lineErr {
	if e := checkLine(l, '2'); e != nil {
		return e
	}
	id, e := parseSatnum(l, 3)
	if e != nil {
		return e
	}
	if id != s.Record.NoradID {
		return synErr(3, "satellite number %d, line 1 has %d", id, s.Record.NoradID)
	}
	r := &s.Record
	for _, f := range []struct {
		dst      *float64
		from, to int
		what     string
	}{
		{&r.Inclination, 9, 16, "inclination"},
		{&r.RAAN, 18, 25, "RAAN"},
		{&r.ArgPerigee, 35, 42, "argument of perigee"},
		{&r.MeanAnomaly, 44, 51, "mean anomaly"},
		{&r.MeanMotion, 53, 63, "mean motion"},
	} {
		if *f.dst, e = parseFloat(l, f.from, f.to, f.what); e != nil {
			return e
		}
	}
	ecc := field(l, 27, 33)
	if len(ecc) != 7 || strings.Trim(ecc, "0123456789") != "" {
		return synErr(27, "bad eccentricity %q", ecc)
	}
	v, _ := strconv.ParseUint(ecc, 10, 32)
	r.Eccentricity = float64(v) / 1e7
	rev, e := parseUint(l, 64, 68, "revolution number")
	if e != nil {
		return e
	}
	r.RevNumber = uint32(rev)
	return nil
}

func cleanLine(l string) string { return strings.TrimRight(l, " \t\r\n") }

// ParseSet parses one element set. name may be empty; CR and trailing
// spaces are tolerated on every line.
func ParseSet(name, line1, line2 string) (Set, error) {
	s := Set{Name: cleanName(name)}
	l1, l2 := cleanLine(line1), cleanLine(line2)
	if e := parseLine1(l1, &s); e != nil {
		return Set{}, &ParseError{Col: e.col, Text: l1, Err: e.err}
	}
	if e := parseLine2(l2, &s); e != nil {
		return Set{}, &ParseError{Col: e.col, Text: l2, Err: e.err}
	}
	return s, nil
}

func cleanName(n string) string {
	n = cleanLine(n)
	if strings.HasPrefix(n, "0 ") {
		n = n[2:]
	}
	return strings.TrimSpace(n)
}

// Reader reads element sets, with or without name lines, from a stream of
// text (LF or CRLF). Blank lines between sets are skipped.
type Reader struct {
	sc   *bufio.Scanner
	line int
	// peeked holds a line read ahead while resynchronizing after an error.
	peeked     string
	peekedLine int
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), 64<<10)
	return &Reader{sc: sc}
}

// Line returns the number of the last input line read (the line 2 of the
// set Next just returned).
func (r *Reader) Line() int { return r.line }

func (r *Reader) next() (string, bool) {
	if r.peeked != "" {
		l := r.peeked
		r.line, r.peeked = r.peekedLine, ""
		return l, true
	}
	for r.sc.Scan() {
		r.line++
		if l := cleanLine(r.sc.Text()); l != "" {
			return l, true
		}
	}
	return "", false
}

func isElementLine(l string, num byte) bool {
	return len(l) == lineLen && l[0] == num && l[1] == ' '
}

// Next returns the next element set, io.EOF at the end of input, or a
// *ParseError naming the input line that failed.
func (r *Reader) Next() (Set, error) {
	l, ok := r.next()
	if !ok {
		if err := r.sc.Err(); err != nil {
			return Set{}, fmt.Errorf("tle: read: %w", err)
		}
		return Set{}, io.EOF
	}
	var s Set
	if isElementLine(l, '2') { // its line 1 was missing or already refused
		return Set{}, &ParseError{Line: r.line, Text: l, Err: fmt.Errorf("%w: line 2 without a line 1", ErrSyntax)}
	}
	if !isElementLine(l, '1') {
		s.Name = cleanName(l)
		if l, ok = r.next(); !ok {
			return Set{}, r.missing("line 1")
		}
	}
	if e := parseLine1(l, &s); e != nil {
		err := &ParseError{Line: r.line, Col: e.col, Text: l, Err: e.err}
		// Skip the set's line 2 too, so that one bad line costs one set
		// and the next set parses from its own first line.
		if l2, ok := r.next(); ok && !isElementLine(l2, '2') {
			r.peeked, r.peekedLine = l2, r.line
		}
		return Set{}, err
	}
	if l, ok = r.next(); !ok {
		return Set{}, r.missing("line 2")
	}
	if e := parseLine2(l, &s); e != nil {
		return Set{}, &ParseError{Line: r.line, Col: e.col, Text: l, Err: e.err}
	}
	return s, nil
}

func (r *Reader) missing(what string) error {
	if err := r.sc.Err(); err != nil {
		return fmt.Errorf("tle: read: %w", err)
	}
	return &ParseError{Line: r.line + 1, Err: fmt.Errorf("%w: input ends before %s", ErrSyntax, what)}
}

// ReadAll reads every element set from r.
func ReadAll(r io.Reader) ([]Set, error) {
	tr := NewReader(r)
	var out []Set
	for {
		s, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
}
