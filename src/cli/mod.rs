//! Command-line front end: argument types and one module per subcommand.
