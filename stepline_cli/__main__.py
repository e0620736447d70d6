from stepline_cli.main import cli

cli(prog_name="stepline")
