//! The JSON Schemas of what the domain reads and writes as text, for the
//! API's OpenAPI document. Each pattern says exactly what its parser takes
//! (tests in the parsers' modules hold the two together); the character
//! classes below are those of Rust's `str::trim` and `char::is_control`,
//! which the parsers use, written out so that any JSON Schema validator
//! reads them alike.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat};
use utoipa::openapi::{KnownFormat, RefOr, Type};

/// Unicode `White_Space`: what `str::trim` takes off both ends.
pub const WHITE_SPACE: &str =
    r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Unicode `Cc`: what `char::is_control` refuses.
pub const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";

/// A string matching `pattern`.
pub fn text(pattern: impl Into<String>, description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

/// `pattern` with any white space around it, as the parsers trim it.
pub fn trimmed(pattern: &str) -> String {
    format!("^[{WHITE_SPACE}]*{pattern}[{WHITE_SPACE}]*$")
}

/// A text of 1 to `max` characters once trimmed (and, with
/// `no_control`, without control characters inside).
pub fn trimmed_text(max: usize, no_control: bool, description: &str) -> Schema {
    let inner = if no_control {
        format!("[^{CONTROL}]")
    } else {
        r"[\s\S]".to_owned()
    };
    let edge = if no_control {
        format!("[^{WHITE_SPACE}{CONTROL}]")
    } else {
        format!("[^{WHITE_SPACE}]")
    };
    let core = format!("{edge}({inner}{{0,{}}}{edge})?", max.saturating_sub(2));
    text(trimmed(&core), description)
}

/// A calendar date as `YYYY-MM-DD`.
pub fn date(description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .pattern(Some(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
        .description(Some(description))
        .into()
}

/// An array of `items`, with bounds on its length.
pub fn array_of(
    items: impl Into<RefOr<Schema>>,
    min: Option<usize>,
    max: Option<usize>,
) -> ArrayBuilder {
    ArrayBuilder::new()
        .items(items.into())
        .min_items(min)
        .max_items(max)
}

/// One of the given schemas, exactly.
pub fn one_of(schemas: impl IntoIterator<Item = Schema>, description: &str) -> Schema {
    let mut builder = OneOfBuilder::new().description(Some(description));
    for schema in schemas {
        builder = builder.item(schema);
    }
    builder.into()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Checks a schema's pattern against the parser it describes.

    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    /// The `pattern` of a string schema.
    pub fn pattern_of(schema: &Schema) -> regex::Regex {
        let Schema::Object(object) = schema else {
            panic!("not an object schema");
        };
        let pattern = object.pattern.as_deref().expect("a pattern");
        regex::Regex::new(pattern).expect("a pattern the regex crate reads")
    }

    pub fn unref(schema: RefOr<Schema>) -> Schema {
        match schema {
            RefOr::T(schema) => schema,
            RefOr::Ref(r) => panic!("a reference, not a schema: {}", r.ref_location),
        }
    }

    /// Asserts that `pattern` accepts exactly what `parses` accepts, over
    /// `inputs`.
    pub fn agree(pattern: &regex::Regex, inputs: &[String], parses: impl Fn(&str) -> bool) {
        for input in inputs {
            assert_eq!(
                pattern.is_match(input),
                parses(input),
                "pattern {pattern} and the parser disagree on {input:?}"
            );
        }
    }

    /// Strings near the shapes a code parser takes: every short string over
    /// an alphabet of the characters that matter, and the given samples with
    /// white space, control characters and case changes around and inside.
    pub fn near(samples: &[&str], alphabet: &[char], max_len: usize) -> Vec<String> {
        let mut inputs: Vec<String> = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..max_len {
            let mut next = Vec::new();
            for prefix in &frontier {
                for c in alphabet {
                    let mut s = prefix.clone();
                    s.push(*c);
                    next.push(s);
                }
            }
            inputs.extend(next.iter().cloned());
            frontier = next;
        }
        for sample in samples {
            let sample = (*sample).to_owned();
            inputs.push(sample.clone());
            inputs.push(sample.to_lowercase());
            for edge in [" ", "\t", "\u{3000}", "\u{1c}", "\0", "\u{85}", "\u{200b}"] {
                inputs.push(format!("{edge}{sample}"));
                inputs.push(format!("{sample}{edge}"));
                for cut in 1..sample.len() {
                    if sample.is_char_boundary(cut) {
                        inputs.push(format!("{}{edge}{}", &sample[..cut], &sample[cut..]));
                    }
                }
            }
            for cut in 0..sample.len() {
                if sample.is_char_boundary(cut) && sample.is_char_boundary(cut + 1) {
                    inputs.push(format!("{}{}", &sample[..cut], &sample[cut + 1..]));
                }
            }
        }
        inputs
    }
}
