//! Numerical building blocks: stable log-sum-exp and softmax ([`lse`]), and dual numbers for
//! the independent derivative ([`dual`]).

pub mod dual;
pub mod lse;
