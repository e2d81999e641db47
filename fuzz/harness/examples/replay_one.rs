//! Runs one input file through one target: `cargo run --release --example replay_one -- TARGET FILE`
//! (with TB_FUZZ_DEBUG=1 to print the decoded case). For reading reproducers on stable.
fn main() {
    let mut args = std::env::args().skip(1);
    let (target, file) = (args.next().expect("TARGET"), args.next().expect("FILE"));
    let run = tb_fuzz_harness::TARGETS.iter().find(|(name, _)| *name == target).expect("unknown target").1;
    run(&std::fs::read(file).expect("readable input"));
    println!("{target}: passed");
}
