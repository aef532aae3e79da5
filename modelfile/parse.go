package modelfile

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxSize is the largest Modelfile Parse accepts, in bytes (16 MiB): large
// enough for long licenses and templates, small enough to bound memory.
const MaxSize = 16 << 20

// Parse reads and parses a Modelfile. It returns the first problem as an
// *Error with its position, wrapping a sentinel error. A Modelfile without
// FROM is an error (ErrMissingFrom).
func Parse(r io.Reader) (*Modelfile, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, &Error{Err: ErrTooLarge, Msg: fmt.Sprintf("modelfile is larger than %d bytes", MaxSize)}
	}
	return ParseString(string(b))
}

// ParseFile parses the Modelfile at path. Relative FROM and ADAPTER paths in
// it are relative to filepath.Dir(path) (see ResolvePath). Errors start with
// the path.
func ParseFile(path string) (*Modelfile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, prefixErr{err})
	}
	return m, nil
}

// prefixErr formats a positioned error as "line:col: msg" after "path:" and
// a whole-file error as " msg".
type prefixErr struct{ err error }

func (p prefixErr) Error() string {
	if e, ok := p.err.(*Error); ok && e.Pos.Line > 0 {
		return e.Error()
	}
	return " " + p.err.Error()
}

func (p prefixErr) Unwrap() error { return p.err }

// ParseString parses a Modelfile held in a string. See Parse.
func ParseString(src string) (*Modelfile, error) {
	if len(src) > MaxSize {
		return nil, &Error{Err: ErrTooLarge, Msg: fmt.Sprintf("modelfile is larger than %d bytes", MaxSize)}
	}
	src = strings.TrimPrefix(src, "\uFEFF")
	src = normalizeNewlines(src)
	p := &parser{src: src, lines: []int{0}}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			p.lines = append(p.lines, i+1)
		}
	}
	m, err := p.parse()
	if err != nil {
		return nil, err
	}
	if len(m.Froms()) == 0 {
		return nil, &Error{Pos: p.pos(len(src)), Err: ErrMissingFrom,
			Msg: "no FROM instruction: a Modelfile needs FROM <model name, reference, GGUF file or safetensors folder>"}
	}
	return m, nil
}

type parser struct {
	src   string
	off   int
	lines []int // byte offset of each line start
}

func (p *parser) pos(off int) Position {
	line := sort.Search(len(p.lines), func(i int) bool { return p.lines[i] > off }) - 1
	if line < 0 {
		line = 0
	}
	col := utf8.RuneCountInString(p.src[p.lines[line]:off]) + 1
	return Position{Line: line + 1, Column: col}
}

func (p *parser) errAt(off int, sentinel error, format string, args ...any) *Error {
	return &Error{Pos: p.pos(off), Err: sentinel, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) eof() bool { return p.off >= len(p.src) }

func (p *parser) skipBlanks() {
	for !p.eof() && (p.src[p.off] == ' ' || p.src[p.off] == '\t' || p.src[p.off] == '\r') {
		p.off++
	}
}

func (p *parser) atLineEnd() bool { return p.eof() || p.src[p.off] == '\n' }

// word reads a run of bytes accepted by ok.
func (p *parser) word(ok func(byte) bool) string {
	start := p.off
	for !p.eof() && ok(p.src[p.off]) {
		p.off++
	}
	return p.src[start:p.off]
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isNameByte(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '_'
}
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// nonSpaceRun returns the text from the current offset up to the next
// blank, for error messages.
func (p *parser) nonSpaceRun() string {
	end := p.off
	for end < len(p.src) && !isSpace(p.src[end]) && end-p.off < 40 {
		end++
	}
	return p.src[p.off:end]
}

func (p *parser) parse() (*Modelfile, error) {
	m := &Modelfile{}
	for {
		p.skipBlanks()
		if p.eof() {
			return m, nil
		}
		switch p.src[p.off] {
		case '\n':
			p.off++
			continue
		case '#':
			for !p.atLineEnd() {
				p.off++
			}
			continue
		}
		start := p.off
		kw := p.word(isLetter)
		if kw == "" || !p.eof() && !isSpace(p.src[p.off]) {
			p.off = start
			return nil, p.errAt(start, ErrUnknownInstruction, "%s", unknownInstructionMsg(p.nonSpaceRun()))
		}
		in := Instruction(strings.ToUpper(kw))
		if !isInstruction(in) {
			return nil, p.errAt(start, ErrUnknownInstruction, "%s", unknownInstructionMsg(kw))
		}
		c := Command{Instruction: in, Pos: p.pos(start)}
		p.skipBlanks()
		switch in {
		case Parameter:
			nameOff := p.off
			if p.atLineEnd() {
				return nil, p.errAt(nameOff, ErrMissingValue, "PARAMETER needs a name and a value: expected PARAMETER <name> <value>")
			}
			name := p.word(isNameByte)
			if name == "" || !p.eof() && !isSpace(p.src[p.off]) {
				p.off = nameOff
				return nil, p.errAt(nameOff, ErrUnknownParameter, "%s", unknownParamMsg(p.nonSpaceRun()))
			}
			spec, ok := LookupParameter(name)
			if !ok {
				return nil, p.errAt(nameOff, ErrUnknownParameter, "%s", unknownParamMsg(name))
			}
			c.Name = spec.Name
			p.skipBlanks()
			valOff := p.off
			v, err := p.value(in)
			if err != nil {
				return nil, err
			}
			if _, err := spec.parse(v); err != nil {
				return nil, p.errAt(valOff, ErrInvalidParameterValue, "parameter %s must be a %s, got %q", spec.Name, spec.Type, v)
			}
			c.Value = v
		case Message:
			roleOff := p.off
			if p.atLineEnd() {
				return nil, p.errAt(roleOff, ErrMissingValue, "MESSAGE needs a role and a text: expected MESSAGE <system|user|assistant> <text>")
			}
			role := p.word(func(b byte) bool { return !isSpace(b) })
			lr := strings.ToLower(role)
			if lr != "system" && lr != "user" && lr != "assistant" {
				return nil, p.errAt(roleOff, ErrInvalidRole, "invalid message role %q: expected system, user or assistant", role)
			}
			c.Name = lr
			p.skipBlanks()
			v, err := p.value(in)
			if err != nil {
				return nil, err
			}
			c.Value = v
		default:
			valOff := p.off
			v, err := p.value(in)
			if err != nil {
				return nil, err
			}
			if in == Requires && !semver.MatchString(v) {
				return nil, p.errAt(valOff, ErrInvalidRequires, "REQUIRES %q is not a semantic version: expected MAJOR.MINOR.PATCH such as 0.5.0", v)
			}
			if (in == From || in == Adapter) && strings.TrimSpace(v) == "" {
				return nil, p.errAt(valOff, ErrMissingValue, "%s needs a non-empty value", in)
			}
			c.Value = v
		}
		m.Commands = append(m.Commands, c)
	}
}

func isInstruction(in Instruction) bool {
	for _, x := range Instructions {
		if x == in {
			return true
		}
	}
	return false
}

func expectedValue(in Instruction) string {
	switch in {
	case From:
		return "FROM <model name, registry reference, GGUF file or safetensors folder>"
	case Adapter:
		return "ADAPTER <path to a LoRA adapter>"
	case Parameter:
		return "PARAMETER <name> <value>"
	case Message:
		return "MESSAGE <role> <text>"
	case Requires:
		return "REQUIRES <version>"
	}
	return string(in) + ` <text> (quote text that spans lines with """)`
}

// value reads an instruction's value at the current offset: a triple-quoted
// or double-quoted string, or the rest of the line.
func (p *parser) value(in Instruction) (string, error) {
	start := p.off
	if p.atLineEnd() {
		return "", p.errAt(start, ErrMissingValue, "missing value: expected %s", expectedValue(in))
	}
	var v string
	switch {
	case strings.HasPrefix(p.src[p.off:], `"""`):
		body := p.off + 3
		i := strings.Index(p.src[body:], `"""`)
		if i < 0 {
			return "", p.errAt(start, ErrUnterminatedQuote, `unterminated """ string: expected a closing """`)
		}
		end := body + i
		// The last three quotes of a run close the string.
		for end+3 < len(p.src) && p.src[end+3] == '"' {
			end++
		}
		v = p.src[body:end]
		p.off = end + 3
	case p.src[p.off] == '"':
		body := p.off + 1
		i := strings.IndexByte(p.src[body:], '"')
		if i < 0 {
			return "", p.errAt(start, ErrUnterminatedQuote, `unterminated " string: expected a closing "`)
		}
		v = p.src[body : body+i]
		p.off = body + i + 1
	default:
		end := strings.IndexByte(p.src[p.off:], '\n')
		if end < 0 {
			end = len(p.src)
		} else {
			end += p.off
		}
		v = strings.TrimRight(p.src[p.off:end], " \t\r")
		p.off = end
		return v, nil
	}
	p.skipBlanks()
	if !p.atLineEnd() {
		return "", p.errAt(p.off, ErrTrailingText, "unexpected %q after the closing quote: expected the end of the line", p.nonSpaceRun())
	}
	return v, nil
}

// normalizeNewlines turns every run of CRs followed by LF into one LF, so
// Windows line endings (even doubled ones) read as Unix ones.
func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r\n") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' {
			j := i
			for j < len(s) && s[j] == '\r' {
				j++
			}
			if j < len(s) && s[j] == '\n' {
				i = j - 1 // the LF is written next
				continue
			}
			b.WriteString(s[i:j])
			i = j - 1
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
