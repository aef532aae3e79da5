package modelfile

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Format writes m in canonical Modelfile syntax: one instruction per line,
// upper-case keywords, values quoted only when needed. The output parses
// back to commands equal to m's (see Modelfile.Equal). It fails with
// ErrUnrepresentable for a value no quoting can hold, and with the
// Validate errors for commands that would not parse.
func Format(w io.Writer, m *Modelfile) error {
	var buf bytes.Buffer
	for _, c := range m.Commands {
		if err := c.validate(); err != nil {
			return err
		}
		q, err := Quote(c.Value)
		if c.Instruction == Parameter && c.Name == "stop" {
			// Stop strings are easier to read quoted, as Ollama prints them.
			if qq, err2 := quoteAlways(c.Value); err2 == nil {
				q, err = qq, nil
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.Instruction, err)
		}
		buf.WriteString(string(c.Instruction))
		buf.WriteByte(' ')
		if c.Name != "" {
			buf.WriteString(c.Name)
			buf.WriteByte(' ')
		}
		buf.WriteString(q)
		buf.WriteByte('\n')
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// String returns the formatted Modelfile, or a comment naming the error
// when Format fails.
func (m *Modelfile) String() string {
	var sb strings.Builder
	if err := Format(&sb, m); err != nil {
		return "# cannot format Modelfile: " + err.Error() + "\n"
	}
	return sb.String()
}

// Quote returns v as Modelfile value syntax: bare when it is one line
// without leading or trailing blanks and does not start with a quote;
// otherwise in """triple quotes""" when it spans lines, else in "double
// quotes" when it holds no '"'. It fails with ErrUnrepresentable when v
// holds both '"' and a run of three quotes followed by other text (which
// would end a triple-quoted string early), or a CRLF line ending (which
// Parse reads as LF).
func Quote(v string) (string, error) {
	if strings.Contains(v, "\r\n") {
		// Parse reads CRLF as LF, so the CR would be lost.
		return "", fmt.Errorf("%w: %.40q holds a CRLF line ending", ErrUnrepresentable, v)
	}
	if v != "" && !strings.Contains(v, "\n") && strings.Trim(v, " \t\r") == v && v[0] != '"' {
		return v, nil
	}
	if strings.Contains(v, "\n") && canTripleQuote(v) {
		return `"""` + v + `"""`, nil
	}
	return quoteAlways(v)
}

// quoteAlways quotes v even when it could stand bare.
func quoteAlways(v string) (string, error) {
	if !strings.Contains(v, `"`) {
		return `"` + v + `"`, nil
	}
	if canTripleQuote(v) {
		return `"""` + v + `"""`, nil
	}
	return "", fmt.Errorf("%w: %.40q", ErrUnrepresentable, v)
}

// canTripleQuote reports whether """v""" parses back to v: every run of
// three or more quotes must reach the end of v.
func canTripleQuote(v string) bool {
	i := strings.Index(v, `"""`)
	if i < 0 {
		return true
	}
	return strings.Trim(v[i:], `"`) == ""
}
