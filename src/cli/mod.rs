//! The command line: parses arguments, calls into the library, maps results to
//! exit codes.
