//go:build !linux

package capture

func helperMain(string) int { return 2 }

// removeBuiltPrograms has nothing to remove: the programs are built for the
// Linux tests only.
func removeBuiltPrograms() {}
