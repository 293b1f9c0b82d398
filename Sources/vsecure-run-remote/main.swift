import VSecureLauncher

// The launcher linked dynamically, so that it can load libcurl: the static `vsecure-run` hands
// launches from a server to it (RemoteHandOff.swift). It never hands off again.
Launcher.main(CommandLine.arguments, handsOffRemote: false)
