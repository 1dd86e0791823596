// Pool counts the words of the Go files under $(go env GOROOT)/src, one
// file a task, in a Pool of workers: Python's Pool.imap_unordered over a
// list of file names, in Go.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	mp "github.com/mpgo/multiprocessing"
)

// countWords counts the words of one file.
func countWords(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return len(bytes.Fields(data)), nil
}

func init() { mp.Register(countWords) }

func main() {
	mp.Init()
	root := goroot()
	var files []string
	err := filepath.WalkDir(filepath.Join(root, "src"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	p, err := mp.NewPool(mp.PoolOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		p.Close()
		p.Join()
	}()
	total := 0
	for n, err := range mp.ImapUnordered[string, int](context.Background(), p, countWords, slices.Values(files), 16) {
		if err != nil {
			log.Fatal(err)
		}
		total += n
	}
	fmt.Printf("%d words in %d Go files under %s, counted by %d workers\n", total, len(files), filepath.Join(root, "src"), p.Processes())
}

func goroot() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		log.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
