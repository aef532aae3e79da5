package llama_test

import (
	"image"
	"image/color"
	"testing"

	"github.com/olmhq/olm/runtime/llama"
)

// BenchmarkDecodeImage measures the Go decoding of a request image (a
// 1024×768 photo-sized JPEG and PNG) into the RGB rows libmtmd takes.
func BenchmarkDecodeImage(b *testing.B) {
	img := image.NewNRGBA(image.Rect(0, 0, 1024, 768))
	for y := 0; y < 768; y++ {
		for x := 0; x < 1024; x++ {
			img.Set(x, y, color.NRGBA{uint8(x ^ y), uint8(x * y >> 4), uint8(y), 255})
		}
	}
	for _, format := range []string{"jpeg", "png"} {
		data := encoded(b, format, img)
		b.Run(format, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, _, _, err := llama.DecodeImage(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
