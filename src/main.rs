fn main() {
    std::process::exit(rigs::run(std::env::args_os()));
}
