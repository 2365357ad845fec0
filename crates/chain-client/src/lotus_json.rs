//! The Lotus JSON encoding of Filecoin values, written once for the client and the devnet.
//!
//! fvm_shared's serde implementations are made for CBOR (an address serialises as bytes,
//! a token amount as big-integer bytes), so they cannot be used on the JSON-RPC wire.
//! Each submodule here is a `#[serde(with = "...")]` adapter for one kind of value, with
//! the Lotus rules: addresses as strings (`"f01234"`, `"t3…"`, `"<empty>"` when
//! undefined), CIDs as `{"/": "bafy…"}`, token amounts and big integers as decimal
//! strings, byte strings as padded standard base64, bitfields as run lengths, and `null`
//! wherever Go writes a nil slice or pointer. [`to_value`] turns any adapter into a JSON
//! value, which is how request parameters are built.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serialises `value` with `serialize` (one of this module's adapters) into a JSON value.
pub fn to_value<T: ?Sized>(
    value: &T,
    serialize: fn(
        &T,
        serde_json::value::Serializer,
    ) -> Result<serde_json::Value, serde_json::Error>,
) -> serde_json::Value {
    // Serialising into a `serde_json::Value` fails only for map keys that are not
    // strings, which none of the adapters produce.
    serialize(value, serde_json::value::Serializer).unwrap_or(serde_json::Value::Null)
}

/// Addresses: `"f01234"`, `"t1…"`. Both network prefixes are read; the prefix written is
/// the process's network (`fvm_shared::address::set_current_network`).
pub mod address {
    use super::*;
    use fvm_shared::address::{Address, Network};

    /// Parses an address written with either network prefix.
    pub fn parse(text: &str) -> Result<Address, String> {
        let network = match text.as_bytes().first() {
            Some(b'f') => Network::Mainnet,
            Some(b't') => Network::Testnet,
            _ => {
                return Err(format!(
                    "{text:?} is not a Filecoin address (it must start with f or t)"
                ));
            }
        };
        network
            .parse_address(text)
            .map_err(|error| format!("{text:?} is not a Filecoin address: {error}"))
    }

    /// Writes an address.
    pub fn serialize<S: Serializer>(address: &Address, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&address.to_string())
    }

    /// Reads an address.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(D::Error::custom)
    }

    /// A pointer to an address: `null` when absent.
    pub mod optional {
        use super::*;

        /// Writes an optional address.
        pub fn serialize<S: Serializer>(
            address: &Option<Address>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match address {
                Some(address) => super::serialize(address, serializer),
                None => serializer.serialize_none(),
            }
        }

        /// Reads an optional address; `"<empty>"` also reads as absent.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Address>, D::Error> {
            match Option::<String>::deserialize(deserializer)? {
                None => Ok(None),
                Some(text) if text == UNDEFINED => Ok(None),
                Some(text) => parse(&text).map(Some).map_err(D::Error::custom),
            }
        }
    }

    /// How Go writes an address that was never set.
    pub const UNDEFINED: &str = "<empty>";

    /// An address value that may be undefined: `"<empty>"` when it is.
    pub mod maybe_undefined {
        use super::*;

        /// Writes the address, or `"<empty>"`.
        pub fn serialize<S: Serializer>(
            address: &Option<Address>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match address {
                Some(address) => super::serialize(address, serializer),
                None => serializer.serialize_str(UNDEFINED),
            }
        }

        /// Reads the address; `"<empty>"` and `null` read as undefined.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Address>, D::Error> {
            optional::deserialize(deserializer)
        }
    }

    /// A list of addresses: `null` reads as empty.
    pub mod vec {
        use super::*;

        /// Writes the addresses.
        pub fn serialize<S: Serializer>(
            addresses: &[Address],
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            let texts: Vec<String> = addresses.iter().map(ToString::to_string).collect();
            texts.serialize(serializer)
        }

        /// Reads the addresses.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Vec<Address>, D::Error> {
            Option::<Vec<String>>::deserialize(deserializer)?
                .unwrap_or_default()
                .iter()
                .map(|text| parse(text).map_err(D::Error::custom))
                .collect()
        }
    }
}

/// CIDs: `{"/": "bafy…"}`.
pub mod cid {
    use super::*;
    use ::cid::Cid;

    #[derive(Serialize, Deserialize)]
    struct Link {
        #[serde(rename = "/")]
        text: String,
    }

    /// Writes a CID.
    pub fn serialize<S: Serializer>(cid: &Cid, serializer: S) -> Result<S::Ok, S::Error> {
        Link {
            text: cid.to_string(),
        }
        .serialize(serializer)
    }

    /// Reads a CID.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cid, D::Error> {
        let link = Link::deserialize(deserializer)?;
        Cid::try_from(link.text.as_str())
            .map_err(|error| D::Error::custom(format!("{:?} is not a CID: {error}", link.text)))
    }

    /// An optional CID: `null` when absent.
    pub mod optional {
        use super::*;

        /// Writes an optional CID.
        pub fn serialize<S: Serializer>(
            cid: &Option<Cid>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match cid {
                Some(cid) => super::serialize(cid, serializer),
                None => serializer.serialize_none(),
            }
        }

        /// Reads an optional CID.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Cid>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] Cid);
            Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|wrapped| wrapped.0))
        }
    }

    /// A list of CIDs (a tipset key): `null` reads as empty.
    pub mod vec {
        use super::*;

        /// Writes the CIDs.
        pub fn serialize<S: Serializer>(cids: &[Cid], serializer: S) -> Result<S::Ok, S::Error> {
            let links: Vec<Link> = cids
                .iter()
                .map(|cid| Link {
                    text: cid.to_string(),
                })
                .collect();
            links.serialize(serializer)
        }

        /// Reads the CIDs.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Vec<Cid>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] Cid);
            Ok(Option::<Vec<Wrapped>>::deserialize(deserializer)?
                .unwrap_or_default()
                .into_iter()
                .map(|wrapped| wrapped.0)
                .collect())
        }
    }
}

/// Token amounts: attoFIL as a decimal string.
pub mod token_amount {
    use super::*;
    use fvm_shared::econ::TokenAmount;

    /// Writes an amount.
    pub fn serialize<S: Serializer>(
        amount: &TokenAmount,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&amount.atto().to_string())
    }

    /// Reads an amount.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<TokenAmount, D::Error> {
        big_int::deserialize(deserializer).map(TokenAmount::from_atto)
    }

    /// An optional amount: `null` when absent.
    pub mod optional {
        use super::*;

        /// Writes an optional amount.
        pub fn serialize<S: Serializer>(
            amount: &Option<TokenAmount>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match amount {
                Some(amount) => super::serialize(amount, serializer),
                None => serializer.serialize_none(),
            }
        }

        /// Reads an optional amount.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<TokenAmount>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] TokenAmount);
            Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|wrapped| wrapped.0))
        }
    }
}

/// Big integers (power, deal weight): a decimal string.
pub mod big_int {
    use super::*;
    use fvm_shared::bigint::BigInt;

    /// Writes a big integer.
    pub fn serialize<S: Serializer>(value: &BigInt, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    /// Reads a big integer.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BigInt, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse::<BigInt>().map_err(|error| {
            D::Error::custom(format!("{text:?} is not a decimal integer: {error}"))
        })
    }
}

/// Byte strings: padded standard base64; `null` reads as empty and empty writes as `null`,
/// as Go writes a nil slice.
pub mod bytes {
    use super::*;
    use base64::Engine as _;

    /// Writes bytes.
    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if bytes.is_empty() {
            serializer.serialize_none()
        } else {
            serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }

    /// Reads bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(Vec::new()),
            Some(text) => base64::engine::general_purpose::STANDARD
                .decode(&text)
                .map_err(|error| D::Error::custom(format!("{text:?} is not base64: {error}"))),
        }
    }

    /// A list of byte strings.
    pub mod vec {
        use super::*;

        /// Writes the byte strings.
        pub fn serialize<S: Serializer>(
            items: &[Vec<u8>],
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            let texts: Vec<String> = items
                .iter()
                .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes))
                .collect();
            texts.serialize(serializer)
        }

        /// Reads the byte strings; `null` reads as none.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Vec<Vec<u8>>, D::Error> {
            Option::<Vec<String>>::deserialize(deserializer)?
                .unwrap_or_default()
                .iter()
                .map(|text| {
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_err(|error| {
                            D::Error::custom(format!("{text:?} is not base64: {error}"))
                        })
                })
                .collect()
        }
    }
}

/// Bitfields: run lengths starting with a run of zeros (`{5}` is `[5,1]`); `null` reads as
/// empty.
pub mod bitfield {
    use super::*;
    use fvm_ipld_bitfield::BitField;
    use fvm_ipld_bitfield::json::{BitFieldJson, BitFieldJsonRef};

    /// Writes a bitfield.
    pub fn serialize<S: Serializer>(bits: &BitField, serializer: S) -> Result<S::Ok, S::Error> {
        BitFieldJsonRef(bits).serialize(serializer)
    }

    /// Reads a bitfield.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BitField, D::Error> {
        Ok(Option::<BitFieldJson>::deserialize(deserializer)?
            .map(|json| json.0)
            .unwrap_or_default())
    }

    /// An optional bitfield filter: `null` means "no filter".
    pub mod optional {
        use super::*;

        /// Writes an optional bitfield.
        pub fn serialize<S: Serializer>(
            bits: &Option<BitField>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match bits {
                Some(bits) => super::serialize(bits, serializer),
                None => serializer.serialize_none(),
            }
        }

        /// Reads an optional bitfield.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<BitField>, D::Error> {
            Ok(Option::<BitFieldJson>::deserialize(deserializer)?.map(|json| json.0))
        }
    }
}

/// Lists that Go writes as `null` when nil: `null` reads as empty.
pub mod nullable_vec {
    use super::*;

    /// Writes the list.
    pub fn serialize<S: Serializer, T: Serialize>(
        items: &[T],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        items.serialize(serializer)
    }

    /// Reads the list.
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Vec<T>, D::Error> {
        Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
    }
}

/// Proof types and other enumerations Lotus writes as numbers.
pub mod proof_type {
    use super::*;

    /// A seal proof type as its number.
    pub mod seal {
        use super::*;
        use fvm_shared::sector::RegisteredSealProof;

        /// Writes the number.
        pub fn serialize<S: Serializer>(
            proof: &RegisteredSealProof,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            serializer.serialize_i64(i64::from(*proof))
        }

        /// Reads the number.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<RegisteredSealProof, D::Error> {
            Ok(RegisteredSealProof::from(i64::deserialize(deserializer)?))
        }
    }

    /// A PoSt proof type as its number.
    pub mod post {
        use super::*;
        use fvm_shared::sector::RegisteredPoStProof;

        /// Writes the number.
        pub fn serialize<S: Serializer>(
            proof: &RegisteredPoStProof,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            serializer.serialize_i64(i64::from(*proof))
        }

        /// Reads the number.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<RegisteredPoStProof, D::Error> {
            Ok(RegisteredPoStProof::from(i64::deserialize(deserializer)?))
        }
    }
}
