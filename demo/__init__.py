"""`make demo`: the example app, instrumented, exporting to a local Aim repo and a SageMaker emulator. Not part of the installed packages."""
