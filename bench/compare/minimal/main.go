// Command minimal does nothing: the floor of a Go program's exec and exit.
package main

func main() {}
