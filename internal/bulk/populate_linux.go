package bulk

import "golang.org/x/sys/unix"

// mapPopulate maps a file's pages at once (MAP_POPULATE).
const mapPopulate = unix.MAP_POPULATE
