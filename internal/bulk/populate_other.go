//go:build unix && !linux

package bulk

// mapPopulate is nothing here: no MAP_POPULATE; pages fault in as read.
const mapPopulate = 0
