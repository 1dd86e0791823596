package wire

import (
	"encoding/binary"
	"fmt"
)

// A queue's lane carries items from the process that made the queue to the
// processes that get from it, in messages on a sequenced-packet socket:
// one item, several small ones, or, for an item larger than LaneInlineMax,
// its size, with the item in a memory file (see internal/bulk) riding on
// the message as its one descriptor.

// Kinds of lane message, its first byte.
const (
	LaneInline = 'i' // then the item
	LaneBatch  = 'b' // then items, each its length (4 bytes big-endian) and itself
	LaneFile   = 'f' // then the item's size, 8 bytes big-endian; one descriptor
)

// laneBatchHead is the length before each item of a batch.
const laneBatchHead = 4

// LaneInlineMax is the largest item that travels in its lane message.
const LaneInlineMax = 16 << 10

// LaneMessageMax is the largest lane message: a reader's buffer holds one.
const LaneMessageMax = 1 + LaneInlineMax

// MaxLaneFile is the largest item a memory file may carry, the limit of
// every frame: a size above it is garbage, not something to allocate.
const MaxLaneFile = MaxFrame

// LaneBatchRoom is how many bytes an item takes in a batch message.
func LaneBatchRoom(item []byte) int { return laneBatchHead + len(item) }

// AppendLaneBatch appends item to msg, a batch message that begins with
// LaneBatch.
func AppendLaneBatch(msg, item []byte) []byte {
	return append(binary.BigEndian.AppendUint32(msg, uint32(len(item))), item...)
}

// LaneFileHead returns the message that announces an item of size bytes in
// a memory file.
func LaneFileHead(size int) []byte {
	return binary.BigEndian.AppendUint64([]byte{LaneFile}, uint64(size))
}

// ParseLane parses a lane message that came with fds descriptors. It
// returns the items of an inline or batch message (aliasing msg), or the
// size of an item in a memory file.
func ParseLane(msg []byte, fds int) (items [][]byte, size int64, err error) {
	if len(msg) == 0 {
		return nil, 0, fmt.Errorf("an empty lane message")
	}
	if msg[0] != LaneFile && fds != 0 {
		return nil, 0, fmt.Errorf("an inline lane message with %d descriptors", fds)
	}
	switch msg[0] {
	case LaneInline:
		return [][]byte{msg[1:]}, 0, nil
	case LaneBatch:
		for rest := msg[1:]; len(rest) > 0; {
			if len(rest) < laneBatchHead {
				return nil, 0, fmt.Errorf("a lane batch cut short in an item's length")
			}
			n := binary.BigEndian.Uint32(rest)
			rest = rest[laneBatchHead:]
			if uint64(n) > uint64(len(rest)) {
				return nil, 0, fmt.Errorf("a lane batch item of %d bytes in %d", n, len(rest))
			}
			items = append(items, rest[:n:n])
			rest = rest[n:]
		}
		if len(items) == 0 {
			return nil, 0, fmt.Errorf("a lane batch of no items")
		}
		return items, 0, nil
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
