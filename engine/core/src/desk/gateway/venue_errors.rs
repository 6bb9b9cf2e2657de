//! Binance's error codes as tape names them to clients.

/// The name tape gives a Binance error code, for clients (`venue_error` messages).
pub fn name(code: i64) -> &'static str {
    match code {
        -1003 => "too_many_requests",
        -1013 => "filter_failure",
        -1015 => "too_many_orders",
        -1021 => "timestamp_outside_recv_window",
        -1022 => "invalid_signature",
        -1100 => "illegal_parameter",
        -1102 => "mandatory_parameter_missing",
        -1121 => "invalid_symbol",
        -2010 => "new_order_rejected",
        -2011 => "cancel_rejected",
        -2013 => "no_such_order",
        -2014 => "bad_api_key_format",
        -2015 => "invalid_api_key_ip_or_permissions",
        -1001 => "venue_unreachable",
        _ => "venue_error",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_codes_the_issue_names_are_named() {
        assert_eq!(super::name(-1021), "timestamp_outside_recv_window");
        assert_eq!(super::name(-1022), "invalid_signature");
        assert_eq!(super::name(-2010), "new_order_rejected");
        assert_eq!(super::name(-2011), "cancel_rejected");
        assert_eq!(super::name(-2015), "invalid_api_key_ip_or_permissions");
        assert_eq!(super::name(-9999), "venue_error");
    }
}
