package engine

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/olmhq/olm/runtime/runner"
)

func TestPlaceImages(t *testing.T) {
	const M = runner.ImageMarker
	for _, tc := range []struct {
		text  string
		n     int
		want  string
		order []int
		err   error
	}{
		{"describe", 1, M + "describe", []int{0}, nil},
		{"describe", 2, M + M + "describe", []int{0, 1}, nil},
		{"a [img-0] b", 1, "a " + M + " b", []int{0}, nil},
		{"[img-1] then [img-0]", 2, M + " then " + M, []int{1, 0}, nil},
		{"[img-1] only", 2, M + M + " only", []int{0, 1}, nil},
		{"[img] and [img]", 2, M + " and " + M, []int{0, 1}, nil},
		{"[img-0] and [img]", 2, M + " and " + M, []int{0, 1}, nil},
		{"x " + M + " y " + M, 2, "x " + M + " y " + M, []int{0, 1}, nil},
		{"[img-0] twice [img-0]", 1, M + " twice " + M, []int{0, 0}, nil},
		{"[img-2]", 2, "", nil, runner.ErrBadRequest},
		{"[img-99999999999999999999]", 1, "", nil, runner.ErrBadRequest},
		{"[img] [img]", 1, "", nil, runner.ErrBadRequest},
		{"no images [img-x] here", 0, "no images [img-x] here", nil, nil},
	} {
		got, order, err := placeImages(tc.text, tc.n)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("placeImages(%q, %d): %v, want %v", tc.text, tc.n, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want || !slices.Equal(order, tc.order) {
			t.Errorf("placeImages(%q, %d) = %q %v %v, want %q %v", tc.text, tc.n, got, order, err, tc.want, tc.order)
		}
	}
}

func TestMarkMessageImages(t *testing.T) {
	for _, tc := range []struct {
		content string
		base, n int
		want    string
	}{
		{"What is this?", 0, 1, "[img-0]What is this?"},
		{"What is this?", 2, 2, "[img-2][img-3]What is this?"},
		{"First [img] then [img]", 1, 2, "First [img-1] then [img-2]"},
		{"See [img-4]", 4, 1, "See [img-4]"},
		{"[img] and more", 0, 2, "[img-1][img-0] and more"},
	} {
		if got := markMessageImages(tc.content, tc.base, tc.n); got != tc.want {
			t.Errorf("markMessageImages(%q, %d, %d) = %q, want %q", tc.content, tc.base, tc.n, got, tc.want)
		}
	}
}

func FuzzPlaceImages(f *testing.F) {
	f.Add("a [img-0] b", 1)
	f.Add("[img] [img-1] "+runner.ImageMarker, 3)
	f.Add("[img-", 2)
	f.Add("", 0)
	f.Fuzz(func(t *testing.T, text string, n int) {
		if n < 0 || n > 16 {
			return
		}
		got, order, err := placeImages(text, n)
		if err != nil {
			if !errors.Is(err, runner.ErrBadRequest) {
				t.Fatalf("error %v is not a bad request", err)
			}
			return
		}
		if c := strings.Count(got, runner.ImageMarker); c != len(order) {
			t.Fatalf("%q has %d markers for %d images %v", got, c, len(order), order)
		}
		seen := make([]bool, n)
		for _, i := range order {
			if i < 0 || i >= n {
				t.Fatalf("order %v refers to image %d of %d", order, i, n)
			}
			seen[i] = true
		}
		for i, s := range seen {
			if !s {
				t.Fatalf("image %d of %d not placed in %q (order %v)", i, n, got, order)
			}
		}
	})
}
