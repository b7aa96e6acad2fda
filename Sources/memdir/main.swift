// main.swift: the memdir executable. Everything is in MemdirKit, the process's streams and its
// exit included; this only starts it.

import MemdirKit

MemdirCLI.runAndExit()
