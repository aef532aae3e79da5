package convert

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// Tensor data is read through a read-only shared mapping of each
// safetensors file where the system allows one: the conversion then reads
// the page cache directly instead of first copying every byte into a
// buffer (which cost as much CPU as the BF16→F16 conversion itself). The
// kernel is asked to read ahead of the conversion (MADV_WILLNEED) and to
// drop the pages behind it from the process (MADV_DONTNEED, which for a
// file mapping only unmaps them: they stay in the page cache), so the
// resident size stays bounded whatever the model size. Files that cannot
// be mapped are read with pread as before.

// mapAhead is how far ahead of the conversion the kernel is asked to read.
const mapAhead = 32 << 20

// mapFile maps f (size bytes) read-only, or returns nil.
func mapFile(f *os.File, size int64) []byte {
	if size <= 0 || int64(int(size)) != size {
		return nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	unix.Madvise(b, unix.MADV_SEQUENTIAL)
	return b
}

func unmapFile(b []byte) {
	if b != nil {
		unix.Munmap(b)
	}
}

// advise applies advice to the whole pages of m that lie in [lo, hi).
// Errors are ignored: advice only tunes performance.
func advise(m []byte, lo, hi int64, advice int) {
	page := int64(os.Getpagesize())
	lo = (max(lo, 0) + page - 1) / page * page
	hi = min(hi, int64(len(m))) / page * page
	if lo < hi {
		unix.Madvise(m[lo:hi], advice)
	}
}

// faultError turns a memory fault while reading a mapped file (the file was
// truncated under the conversion: SIGBUS) into an error instead of a crash.
// Call it deferred in a goroutine that set debug.SetPanicOnFault(true).
func faultError(err *error, name string) {
	if r := recover(); r != nil {
		if _, ok := r.(interface{ Addr() uintptr }); !ok {
			panic(r)
		}
		*err = fmt.Errorf("%w: reading %s: the file changed while being converted (%v)", ErrInvalid, name, r)
	}
}

// emitMapped writes the tensor from the file's mapping m, whose bytes
// [begin, begin+total) it is, in chunks of len(buf) bytes.
func (p *plan) emitMapped(ctx context.Context, w io.Writer, m []byte, begin, total int64, buf, out []byte, progress func(int)) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer faultError(&err, p.src.Name)
	srcType, dstType := p.src.DType, p.info.Type.String()
	chunk := int64(len(buf) / 8 * 8)
	for off := int64(0); off < total; off += chunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		lo, hi := begin+off, begin+min(off+chunk, total)
		if off%mapAhead == 0 {
			advise(m, hi, hi+mapAhead, unix.MADV_WILLNEED)
		}
		b := m[lo:hi]
		var o []byte
		switch {
		case srcType == dstType && !p.addOne:
			o = b // pass through: the writer copies from the page cache
		case elemSize(srcType) == 2 && elemSize(dstType) == 2 && !p.addOne:
			o = buf[:len(b)]
			if err := convert16(o, b, srcType); err != nil {
				return fmt.Errorf("%w: reading %s: %v", ErrInvalid, p.src.Name, err)
			}
		default:
			o = convertElems(out[:0], b, srcType, dstType, p.addOne)
		}
		if _, err := w.Write(o); err != nil {
			return err
		}
		progress(len(o))
		advise(m, lo-chunk, lo, unix.MADV_DONTNEED)
	}
	advise(m, begin+total-chunk, begin+total, unix.MADV_DONTNEED)
	return nil
}
