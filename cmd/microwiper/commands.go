package main

// commands is the one registry of subcommands. Each entry's code lives in a
// file named after it.
var commands = []command{
	versionCommand,
	captureCommand,
	replayCommand,
	runCommand,
	reportCommand,
	compareCommand,
	serveCommand,
	algorithmsCommand,
	traceCommand,
	traceGenCommand,
	traceInfoCommand,
	traceValidateCommand,
	traceConvertCommand,
}
