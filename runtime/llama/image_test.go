package llama_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/olmhq/olm/runtime/llama"
)

func encoded(t testing.TB, format string, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&b, img)
	case "jpeg":
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 100})
	case "gif":
		err = gif.Encode(&b, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bmp24 writes a bottom-up 24-bit BMP of w×h pixels of color c.
func bmp24(w, h int, c color.RGBA) []byte {
	row := (w*3 + 3) &^ 3
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) } //nolint:errcheck // bytes.Buffer
	b.WriteString("BM")
	le(uint32(54 + row*h))
	le(uint32(0))
	le(uint32(54))
	le(uint32(40))
	le(int32(w))
	le(int32(h))
	le(uint16(1))
	le(uint16(24))
	le(uint32(0))
	le(uint32(row * h))
	le([4]uint32{})
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			b.Write([]byte{c.B, c.G, c.R})
		}
		b.Write(make([]byte, row-w*3))
	}
	return b.Bytes()
}

func TestDecodeImage(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 5, 3))
	for y := 0; y < 3; y++ {
		for x := 0; x < 5; x++ {
			src.Set(x, y, color.NRGBA{uint8(50 * x), uint8(100 * y), 7, 255})
		}
	}
	translucent := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	translucent.Set(0, 0, color.NRGBA{200, 100, 50, 10})
	for name, tc := range map[string]struct {
		data     []byte
		w, h     int
		first    [3]byte
		lossless bool
	}{
		"png":              {encoded(t, "png", src), 5, 3, [3]byte{0, 0, 7}, true},
		"gif":              {encoded(t, "gif", src), 5, 3, [3]byte{0, 0, 7}, false},
		"jpeg":             {encoded(t, "jpeg", src), 5, 3, [3]byte{0, 0, 7}, false},
		"bmp":              {bmp24(2, 2, color.RGBA{9, 8, 7, 255}), 2, 2, [3]byte{9, 8, 7}, true},
		"alpha is dropped": {encoded(t, "png", translucent), 1, 1, [3]byte{200, 100, 50}, true},
	} {
		rgb, w, h, err := llama.DecodeImage(tc.data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if w != tc.w || h != tc.h || len(rgb) != w*h*3 {
			t.Errorf("%s: %d×%d with %d bytes, want %d×%d", name, w, h, len(rgb), tc.w, tc.h)
			continue
		}
		for i := range 3 {
			d := int(rgb[i]) - int(tc.first[i])
			if tc.lossless && d != 0 || d < -32 || d > 32 { // JPEG subsamples chroma
				t.Errorf("%s: first pixel %v, want %v", name, rgb[:3], tc.first)
				break
			}
		}
	}
	if name := "png"; true {
		rgb, _, _, _ := llama.DecodeImage(encoded(t, name, src))
		if got := rgb[(2*5+4)*3 : (2*5+4)*3+3]; !bytes.Equal(got, []byte{200, 200, 7}) {
			t.Errorf("png pixel (4,2) = %v, want [200 200 7]", got)
		}
	}

	huge := encoded(t, "png", image.NewGray(image.Rect(0, 0, 1, 1)))
	// Patch the IHDR size to 65536×65536 (the CRC no longer matches, but
	// the size is read first and refused before any decoding).
	binary.BigEndian.PutUint32(huge[16:], 1<<16)
	binary.BigEndian.PutUint32(huge[20:], 1<<16)
	for name, data := range map[string][]byte{
		"empty":     nil,
		"text":      []byte("not an image at all"),
		"truncated": encoded(t, "png", src)[:40],
		"huge":      huge,
	} {
		if _, _, _, err := llama.DecodeImage(data); !errors.Is(err, llama.ErrImage) {
			t.Errorf("%s: %v, want ErrImage", name, err)
		}
	}
}

func FuzzDecodeImage(f *testing.F) {
	src := image.NewRGBA(image.Rect(0, 0, 3, 2))
	f.Add(encoded(f, "png", src))
	f.Add(encoded(f, "gif", src))
	f.Add(encoded(f, "jpeg", src))
	f.Add(bmp24(1, 1, color.RGBA{1, 2, 3, 255}))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "))
	f.Fuzz(func(t *testing.T, data []byte) {
		rgb, w, h, err := llama.DecodeImage(data)
		if err != nil {
			if !errors.Is(err, llama.ErrImage) {
				t.Fatalf("error %v does not wrap ErrImage", err)
			}
			return
		}
		if w <= 0 || h <= 0 || len(rgb) != w*h*3 {
			t.Fatalf("%d×%d with %d bytes", w, h, len(rgb))
		}
	})
}
