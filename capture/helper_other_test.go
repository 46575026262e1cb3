//go:build !linux

package capture

func helperMain(string) int { return 2 }

func removeBuiltPrograms() {}
