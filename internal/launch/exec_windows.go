package launch

// Starting children on Windows needs the bootstrap channel built from
// inherited pipe handles instead of a socketpair; until then Start says so.

// Spawn would start a fresh exec of the program.
var Spawn Launcher = Unsupported("spawn (on Windows)")
