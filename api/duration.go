package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Duration is keep_alive's value. On the wire it is a Go duration string
// ("5m", "1h", "0") or a number of seconds (300, 0); a negative value (-1,
// "-1m") keeps the model loaded forever and decodes to Forever. It encodes
// as a duration string, or -1 for Forever.
type Duration struct {
	time.Duration
}

// Forever is the Duration that keeps a model loaded until it is unloaded
// explicitly.
const Forever = time.Duration(math.MaxInt64)

// NewDuration returns a Duration of d; a negative d means Forever.
func NewDuration(d time.Duration) *Duration {
	if d < 0 {
		d = Forever
	}
	return &Duration{d}
}

// MarshalJSON writes d as a duration string, or -1 for Forever.
func (d Duration) MarshalJSON() ([]byte, error) {
	if d.Duration < 0 || d.Duration == Forever {
		return []byte("-1"), nil
	}
	return json.Marshal(d.Duration.String())
}

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%w: %s", ErrInvalidDuration, b)
		}
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		d.Duration = v
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("%w: %s (want a duration such as \"5m\" or a number of seconds)", ErrInvalidDuration, b)
	}
	d.Duration = secondsToDuration(f)
	return nil
}

// ParseDuration parses a keep_alive string: a Go duration ("5m", "1h30m"),
// or a bare number of seconds ("300", "-1"). Negative values mean Forever.
func ParseDuration(s string) (time.Duration, error) {
	if v, err := time.ParseDuration(s); err == nil {
		if v < 0 {
			return Forever, nil
		}
		return v, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%w: %q (want a duration such as \"5m\" or a number of seconds)", ErrInvalidDuration, s)
	}
	return secondsToDuration(f), nil
}

func secondsToDuration(f float64) time.Duration {
	if f < 0 {
		return Forever
	}
	if f*float64(time.Second) >= float64(math.MaxInt64) {
		return Forever
	}
	return time.Duration(f * float64(time.Second))
}
