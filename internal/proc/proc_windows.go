package proc

import "os"

// KillSelf ends this process: a daemon whose parent died.
func KillSelf() { os.Exit(1) }
