//! Table definitions shared by both backends: only portable SQL types, so one
//! schema serves the `DbConn` MultiConnection.

diesel::table! {
    product_versions (id) {
        id -> BigInt,
        product_id -> Text,
        version -> Integer,
        content_hash -> Text,
        period_start -> Date,
        period_end -> Date,
        body -> Text,
        loaded_by -> Text,
        loaded_at -> Timestamp,
        pricing_scenario_sha256 -> Nullable<Text>,
    }
}

diesel::table! {
    members (id) {
        id -> BigInt,
        resident_id_hash -> Text,
        resident_id_masked -> Text,
        name -> Text,
        phone -> Text,
        birth_date -> Date,
        sex -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    enrollments (id) {
        id -> BigInt,
        member_id -> BigInt,
        product_id -> Text,
        product_version_id -> BigInt,
        insurance_type -> Text,
        declared_conditions -> Text,
        enrolled_on -> Date,
        coverage_start -> Date,
        waiting_waived -> Bool,
        enrolled_by -> Text,
        created_at -> Timestamp,
        age_band -> Text,
        sex -> Text,
        preexisting -> Bool,
    }
}

diesel::table! {
    claims (id) {
        id -> BigInt,
        member_id -> BigInt,
        enrollment_id -> BigInt,
        product_version_id -> BigInt,
        kind -> Text,
        service_date -> Date,
        provider_id -> Text,
        submission -> Text,
        submitted_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    decisions (id) {
        id -> BigInt,
        claim_id -> BigInt,
        sequence -> Integer,
        parent_decision_id -> Nullable<BigInt>,
        product_version_id -> BigInt,
        status -> Text,
        payable_fen -> BigInt,
        body -> Text,
        decided_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    reversals (id) {
        id -> BigInt,
        claim_id -> BigInt,
        reason -> Text,
        reversed_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    paid_items (id) {
        id -> BigInt,
        member_id -> BigInt,
        claim_id -> BigInt,
        decision_id -> BigInt,
        item_index -> Integer,
        fingerprint -> Text,
        authorization_id -> Nullable<BigInt>,
        cycle -> Nullable<Integer>,
    }
}

diesel::table! {
    ledger_entries (id) {
        id -> BigInt,
        member_id -> BigInt,
        product_id -> Text,
        benefit -> Text,
        claim_id -> BigInt,
        decision_id -> Nullable<BigInt>,
        reversal_id -> Nullable<BigInt>,
        item_index -> Integer,
        deductible_fen -> BigInt,
        paid_fen -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (principal, idempotency_key) {
        principal -> Text,
        idempotency_key -> Text,
        operation -> Text,
        request_hash -> Text,
        response_body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        entity -> Text,
        payload -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        token_hash -> Text,
        role -> Text,
        member_id -> Nullable<BigInt>,
        provider_id -> Nullable<Text>,
        label -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        signup_hash -> Nullable<Text>,
    }
}

diesel::table! {
    pricing_runs (id) {
        id -> BigInt,
        requested_by -> Text,
        scenario_name -> Text,
        scenario_hash -> Text,
        status -> Text,
        error -> Nullable<Text>,
        result -> Nullable<Text>,
        created_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    authorizations (id) {
        id -> BigInt,
        member_id -> BigInt,
        product_id -> Text,
        drug -> Text,
        start_date -> Date,
        decided_status -> Text,
        body -> Text,
        requested_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    authorization_followups (id) {
        id -> BigInt,
        authorization_id -> BigInt,
        assessed_on -> Date,
        response -> Text,
        recorded_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    authorization_cancels (authorization_id) {
        authorization_id -> BigInt,
        cancelled_on -> Date,
        reason -> Text,
        cancelled_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(enrollments -> members (member_id));
diesel::joinable!(enrollments -> product_versions (product_version_id));
diesel::joinable!(claims -> members (member_id));
diesel::joinable!(claims -> enrollments (enrollment_id));
diesel::joinable!(decisions -> claims (claim_id));
diesel::joinable!(reversals -> claims (claim_id));
diesel::joinable!(paid_items -> claims (claim_id));
diesel::joinable!(ledger_entries -> claims (claim_id));
diesel::joinable!(api_tokens -> members (member_id));

diesel::allow_tables_to_appear_in_same_query!(
    product_versions,
    members,
    enrollments,
    claims,
    decisions,
    reversals,
    paid_items,
    ledger_entries,
    idempotency_keys,
    audit_events,
    api_tokens,
    pricing_runs,
    authorizations,
    authorization_followups,
    authorization_cancels,
);
