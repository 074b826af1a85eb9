//! The credentials an HTTP request presents, read from its headers: a Bearer token, the
//! password of Basic authentication (a browser's login prompt), `X-API-Key`. Both the
//! bridge's shared token and a tenant's token are looked for among them.

use http::HeaderMap;

/// Every token the request presents: Bearer, a Basic password, `X-API-Key`.
pub fn presented_credentials(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    let authorization = headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (scheme, credentials) = v.trim().split_once(' ')?;
            let credentials = credentials.trim();
            if scheme.eq_ignore_ascii_case("bearer") {
                Some(credentials.to_owned())
            } else if scheme.eq_ignore_ascii_case("basic") {
                // A browser's login prompt (the status page): any user name, the token as the
                // password.
                let decoded = String::from_utf8(base64_decode(credentials)?).ok()?;
                decoded
                    .split_once(':')
                    .map(|(_, password)| password.to_owned())
            } else {
                None
            }
        });
    let api_key = headers
        .get_all("x-api-key")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned());
    authorization.chain(api_key)
}

/// Standard base64 (padding optional); `None` for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::alphabet::STANDARD;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const PADDING_OPTIONAL: GeneralPurpose = GeneralPurpose::new(
        &STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    PADDING_OPTIONAL.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_with_or_without_padding() {
        assert_eq!(base64_decode("dXNlcjpzZWNyZXQ=").unwrap(), b"user:secret");
        assert_eq!(base64_decode("dXNlcjpzZWNyZXQ").unwrap(), b"user:secret");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("not base64!").is_none());
        assert!(
            base64_decode("dXNlcjpzZWNyZXQ-").is_none(),
            "base64url is not accepted"
        );
    }

    #[test]
    fn every_form_of_credential_is_presented() {
        let mut headers = HeaderMap::new();
        headers.append("authorization", "Bearer  one ".parse().unwrap());
        headers.append("authorization", "Basic dXNlcjp0d28=".parse().unwrap());
        headers.append("authorization", "Digest three".parse().unwrap());
        headers.append("x-api-key", " four".parse().unwrap());
        let given: Vec<String> = presented_credentials(&headers).collect();
        assert_eq!(given, ["one", "two", "four"]);
    }
}
