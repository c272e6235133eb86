// @generated automatically by Diesel CLI.

diesel::table! {
    article_count_shards (shard) {
        shard -> Int2,
        articles -> Int8,
    }
}

diesel::table! {
    article_tags (article_id, tag_id) {
        article_id -> Int8,
        tag_id -> Int8,
        created_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    articles (id) {
        id -> Int8,
        author_id -> Int8,
        slug -> Text,
        title -> Text,
        description -> Text,
        body -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    comments (id) {
        id -> Int8,
        article_id -> Int8,
        author_id -> Int8,
        body -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    favorites (user_id, article_id) {
        user_id -> Int8,
        article_id -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    follows (follower_id, followed_id) {
        follower_id -> Int8,
        followed_id -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    seeded_demo_account (user_id) {
        user_id -> Int8,
    }
}

diesel::table! {
    sessions (id) {
        id -> Int8,
        user_id -> Int8,
        token_sha256 -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        last_used_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    tag_link_count_shards (tag_id, shard) {
        tag_id -> Int8,
        shard -> Int8,
        links -> Int8,
    }
}

diesel::table! {
    tags (id) {
        id -> Int8,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    throttle_counters (key) {
        key -> Text,
        attempts -> Int8,
        window_ends_at -> Timestamptz,
        next_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        username -> Text,
        email -> Text,
        password_hash -> Text,
        bio -> Nullable<Text>,
        image -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        username_folded -> Nullable<Text>,
        username_skeleton -> Nullable<Text>,
        email_folded -> Nullable<Text>,
        identity_keys_version -> Int8,
    }
}

diesel::joinable!(article_tags -> articles (article_id));
diesel::joinable!(article_tags -> tags (tag_id));
diesel::joinable!(articles -> users (author_id));
diesel::joinable!(comments -> articles (article_id));
diesel::joinable!(comments -> users (author_id));
diesel::joinable!(favorites -> articles (article_id));
diesel::joinable!(favorites -> users (user_id));
diesel::joinable!(seeded_demo_account -> users (user_id));
diesel::joinable!(sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    article_count_shards,
    article_tags,
    articles,
    comments,
    favorites,
    follows,
    seeded_demo_account,
    sessions,
    tag_link_count_shards,
    tags,
    throttle_counters,
    users,
);
