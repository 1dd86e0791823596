//go:build unix

package bootstrap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/mpgo/multiprocessing/internal/fdpass"
	"github.com/mpgo/multiprocessing/internal/ownfd"
	"github.com/mpgo/multiprocessing/internal/wire"
)

// SendFrame writes frame over sock as wire.WriteFrame does, with fds on
// its first bytes, so that a small bootstrap and its descriptors make one
// message.
func SendFrame(sock *os.File, frame []byte, fds []int) error {
	if len(frame) > wire.MaxFrame {
		return wire.ErrFrameTooLarge
	}
	first := binary.BigEndian.AppendUint32(make([]byte, 0, 4+min(len(frame), firstPart)), uint32(len(frame)))
	first = append(first, frame[:min(len(frame), firstPart)]...)
	n, err := fdpass.SendMsgN(sock, first, fds...)
	if err == nil && n < len(first) {
		_, err = sock.Write(first[n:])
	}
	if err == nil && len(frame) > firstPart {
		_, err = sock.Write(frame[firstPart:])
	}
	return err
}

// wholeFrame returns the frame that fills data, if data is one whole frame
// (a bootstrap that came in one message, as most do).
func wholeFrame(data []byte) ([]byte, bool) {
	if len(data) < 4 || int(binary.BigEndian.Uint32(data)) != len(data)-4 {
		return nil, false
	}
	return data[4:], true
}

// firstPart is how much of a bootstrap frame rides with its descriptors
// in SendFrame's first message.
const firstPart = 64 << 10

// Buffer returns the buffer of a bootstrap's first read, its pages
// touched. A small one: the descriptors come with the first read whatever
// its size. The kernel's copy into a page that was never touched is a page
// fault, which a warm child must take before it waits,
// not in the start.
func Buffer() []byte {
	buf := make([]byte, 4<<10)
	for i := 0; i < len(buf); i += 1 << 10 {
		buf[i] = 1
	}
	return buf
}

// RecvFrame reads what SendFrame wrote into buf, then the rest of it:
// the bootstrap and, as its Files, the descriptors that came with it.
func RecvFrame(sock *os.File, buf []byte) (*wire.Bootstrap, error) {
	n, fds, err := fdpass.RecvMsg(sock, buf)
	if err != nil {
		return nil, err
	}
	var frame []byte
	if whole, ok := wholeFrame(buf[:n]); ok {
		frame = whole
	} else {
		frame, err = wire.ReadFrame(io.MultiReader(bytes.NewReader(buf[:n]), sock))
	}
	if err != nil {
		ownfd.CloseFDs(fds)
		return nil, fmt.Errorf("reading the bootstrap message: %w", err)
	}
	boot, err := wire.DecodeBootstrap(frame)
	if err != nil {
		ownfd.CloseFDs(fds)
		return nil, err
	}
	boot.Files = fds
	return boot, nil
}
