package modelfile

import (
	"errors"
	"fmt"
)

// Sentinel errors. Parse wraps them in an *Error with the position.
var (
	// ErrUnknownInstruction: a line starts with a word that is not an instruction.
	ErrUnknownInstruction = errors.New("unknown instruction")
	// ErrMissingValue: an instruction, parameter name or message role has nothing after it.
	ErrMissingValue = errors.New("missing value")
	// ErrUnterminatedQuote: a quoted value runs to the end of the input.
	ErrUnterminatedQuote = errors.New("unterminated quoted value")
	// ErrTrailingText: text follows the closing quote of a value on the same line.
	ErrTrailingText = errors.New("unexpected text after quoted value")
	// ErrUnknownParameter: PARAMETER names an option olm does not know.
	ErrUnknownParameter = errors.New("unknown parameter")
	// ErrInvalidParameterValue: a parameter value does not have the parameter's type.
	ErrInvalidParameterValue = errors.New("invalid parameter value")
	// ErrInvalidRole: MESSAGE names a role other than system, user or assistant.
	ErrInvalidRole = errors.New("invalid message role")
	// ErrInvalidRequires: REQUIRES is not a semantic version.
	ErrInvalidRequires = errors.New("invalid REQUIRES version")
	// ErrMissingFrom: the Modelfile has no FROM instruction.
	ErrMissingFrom = errors.New("no FROM instruction")
	// ErrTooLarge: the Modelfile is larger than MaxSize.
	ErrTooLarge = errors.New("modelfile too large")
	// ErrUnrepresentable: Format cannot write a value so that it parses back
	// unchanged (a multi-line value holding both '"' and a run of three
	// quotes followed by other text).
	ErrUnrepresentable = errors.New("value cannot be written in Modelfile syntax")
)

// Position is a place in a Modelfile: 1-based line and column (in runes).
// The zero Position means "unknown".
type Position struct {
	Line   int
	Column int
}

// String returns "line:column", or "" for the zero Position.
func (p Position) String() string {
	if p.Line == 0 {
		return ""
	}
	return fmt.Sprintf("%d:%d", p.Line, p.Column)
}

// Error is a parse or validation error at a position in the Modelfile.
// It wraps one of the package's sentinel errors (see Unwrap).
type Error struct {
	Pos Position // where the problem is; zero when it concerns the whole file
	Err error    // the sentinel error, such as ErrUnknownParameter
	Msg string   // what was found and what was expected
}

// Error returns "line:col: msg".
func (e *Error) Error() string {
	if e.Pos.Line == 0 {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }
