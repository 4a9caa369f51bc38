pub mod dm;
