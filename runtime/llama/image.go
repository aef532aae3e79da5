package llama

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	_ "image/gif" // registers GIF with image.Decode
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"
)

// MaxImagePixels bounds the size of an image DecodeImage accepts (width ×
// height; 64 Mpx, 192 MiB as RGB). Image headers are untrusted: the bound is
// checked before any pixel is decoded.
const MaxImagePixels = 64 << 20

// DecodeImage decodes an image file (JPEG, PNG, GIF, BMP or WebP; the first
// frame of an animation) into packed 8-bit RGB rows, as libmtmd wants them.
// The decoding is Go's, not llama.cpp's: untrusted bytes never reach C
// image parsers. Errors wrap ErrImage.
func DecodeImage(data []byte) (rgb []byte, width, height int, err error) {
	if len(data) == 0 {
		return nil, 0, 0, fmt.Errorf("%w: empty image", ErrImage)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: %d bytes: %v (olm reads JPEG, PNG, GIF, BMP and WebP)", ErrImage, len(data), err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return nil, 0, 0, fmt.Errorf("%w: %s image of %d×%d pixels (at most %d pixels)", ErrImage, format, cfg.Width, cfg.Height, MaxImagePixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: %s image: %v", ErrImage, format, err)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	// Non-premultiplied, alpha dropped: the colors stb_image gives
	// llama.cpp's own tools for an RGB load. An opaque image goes through
	// RGBA (the same values), for which draw has fast paths (JPEG's YCbCr).
	var pix []byte
	var stride int
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		px, ok := img.(*image.RGBA)
		if !ok || px.Rect.Min != (image.Point{}) {
			px = image.NewRGBA(image.Rect(0, 0, w, h))
			draw.Draw(px, px.Rect, img, b.Min, draw.Src)
		}
		pix, stride = px.Pix, px.Stride
	} else {
		px, ok := img.(*image.NRGBA)
		if !ok || px.Rect.Min != (image.Point{}) {
			px = image.NewNRGBA(image.Rect(0, 0, w, h))
			draw.Draw(px, px.Rect, img, b.Min, draw.Src)
		}
		pix, stride = px.Pix, px.Stride
	}
	rgb = make([]byte, w*h*3)
	o := 0
	for y := 0; y < h; y++ {
		row := pix[y*stride : y*stride+w*4]
		for x := 0; x < len(row); x += 4 {
			rgb[o], rgb[o+1], rgb[o+2] = row[x], row[x+1], row[x+2]
			o += 3
		}
	}
	return rgb, w, h, nil
}
