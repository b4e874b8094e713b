//! placeholder
#[derive(Debug, clap::Args)]
pub struct LoadgenArgs {}
pub fn run(_: LoadgenArgs) -> Result<(), String> {
    Ok(())
}
