package blobstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// cloneFile makes dst share src's extents copy-on-write (FICLONE).
func cloneFile(dst, src *os.File) error {
	return unix.IoctlFileClone(int(dst.Fd()), int(src.Fd()))
}

// startWriteback asks the kernel to start writing [off, off+n) of f to disk
// without waiting for it.
func startWriteback(f *os.File, off, n int64) {
	unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
