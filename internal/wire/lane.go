package wire

import (
	"encoding/binary"
	"fmt"
)

// A queue's lane carries items from the process that made the queue to the
// processes that get from it, one message per item on a sequenced-packet
// socket: the item itself, or, for an item larger than LaneInlineMax, its size,
// with the item in a memory file riding on the message as its one
// descriptor.

// Kinds of lane message, its first byte.
const (
	LaneInline = 'i' // then the item
	LaneFile   = 'f' // then the item's size, 8 bytes big-endian; one descriptor
)

// LaneInlineMax is the largest item that travels in its lane message.
const LaneInlineMax = 16 << 10

// LaneMessageMax is the largest lane message: a reader's buffer holds one.
const LaneMessageMax = 1 + LaneInlineMax

// MaxLaneFile is the largest item a memory file may carry, the limit of
// every frame: a size above it is garbage, not something to allocate.
const MaxLaneFile = MaxFrame

// LaneFileHead returns the message that announces an item of size bytes in
// a memory file.
func LaneFileHead(size int) []byte {
	return binary.BigEndian.AppendUint64([]byte{LaneFile}, uint64(size))
}

// ParseLane parses a lane message that came with fds descriptors. It
// returns the item of an inline message (aliasing msg), or the size of an
// item in a memory file.
func ParseLane(msg []byte, fds int) (item []byte, size int64, err error) {
	if len(msg) == 0 {
		return nil, 0, fmt.Errorf("an empty lane message")
	}
	switch msg[0] {
	case LaneInline:
		if fds != 0 {
			return nil, 0, fmt.Errorf("an inline lane item with %d descriptors", fds)
		}
		return msg[1:], 0, nil
	case LaneFile:
		if len(msg) != 9 || fds != 1 {
			return nil, 0, fmt.Errorf("a lane item in a file announced in %d bytes with %d descriptors", len(msg), fds)
		}
		size := binary.BigEndian.Uint64(msg[1:])
		if size > MaxLaneFile {
			return nil, 0, fmt.Errorf("a lane item of %d bytes, over the limit", size)
		}
		return nil, int64(size), nil
	}
	return nil, 0, fmt.Errorf("unknown lane message kind %q", msg[0])
}
