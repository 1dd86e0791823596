package connection_test

import (
	"bytes"
	"errors"
	"fmt"

	mp "github.com/mpgo/multiprocessing"
	"github.com/mpgo/multiprocessing/connection"
)

// A Listener and a client that both know the key; a Python program's
// multiprocessing.connection.Client could be either side's peer.
func ExampleListen() {
	key := []byte("secret")
	l, err := connection.Listen("tcp", "127.0.0.1:0", key)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		msg, _ := c.RecvBytes()
		c.SendBytes(bytes.ToUpper(msg))
	}()
	c, err := connection.Dial("tcp", l.Addr().String(), key)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.SendBytes([]byte("hello"))
	reply, _ := c.RecvBytes()
	fmt.Println(string(reply))
	_, err = connection.Dial("tcp", l.Addr().String(), []byte("wrong"))
	fmt.Println(errors.Is(err, mp.ErrAuthentication))
	// Output:
	// HELLO
	// true
}
