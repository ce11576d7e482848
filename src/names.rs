//! `named_enum!`: an enum whose variants each carry the one name (and aliases) the command line,
//! config files and messages use, and a one-line description. From that single definition come
//! `ALL`, `name()`, `FromStr` (with an error listing every name), `Display`, and clap's `ValueEnum`
//! (so `--help` lists the names with their descriptions). Tested in `tests/cli.rs`.

/// `named_enum! { "what it is", #[derive(..)] pub enum E { /// description\n V = "name" | "alias", … } }`
#[macro_export]
macro_rules! named_enum {
    ($what:literal, $(#[$meta:meta])* pub enum $E:ident { $($(#[doc = $doc:literal])* $V:ident = $name:literal $(| $alias:literal)*),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $E { $($(#[doc = $doc])* $V),* }

        impl $E {
            /// Every variant, in definition order.
            pub const ALL: &'static [$E] = &[$($E::$V),*];

            /// The name the command line takes.
            pub fn name(self) -> &'static str {
                match self { $($E::$V => $name),* }
            }

            /// Every name, joined by `sep`.
            pub fn list(sep: &str) -> String {
                Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(sep)
            }

            /// The description, as `--help` shows it (clap's style: no closing period).
            fn help(self) -> &'static str {
                let doc = match self { $($E::$V => concat!($($doc),*).trim_ascii()),* };
                doc.strip_suffix('.').unwrap_or(doc)
            }

            fn aliases(self) -> &'static [&'static str] {
                match self { $($E::$V => &[$($alias),*]),* }
            }
        }

        impl std::str::FromStr for $E {
            type Err = $crate::error::Error;
            fn from_str(s: &str) -> $crate::error::Result<$E> {
                Self::ALL.iter().copied().find(|v| v.name() == s || v.aliases().contains(&s)).ok_or_else(|| {
                    $crate::err!("unknown {} `{s}` (expected one of {})", $what, Self::list(", "))
                })
            }
        }

        impl std::fmt::Display for $E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl clap::ValueEnum for $E {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.name()).help(self.help()).aliases(self.aliases().iter().copied()))
            }
        }
    };
}
