import VSecureLauncher

Launcher.main(CommandLine.arguments)
