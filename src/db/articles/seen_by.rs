//! What the API shows of an article besides its row, as one viewer sees
//! it: tags, favorites, whether the viewer favorited it and follows its
//! author, as subqueries of the outer query's `articles` row.

use diesel::dsl;
use diesel::prelude::*;

use super::{Article, ArticleDetails};
use crate::db::functions::array_agg;
use crate::db::users::User;
use crate::schema::{article_tags, articles, favorites, follows, tags};

/// The article's tag names in order, as one array (NULL for none):
/// a subquery on the outer query's `articles` row.
#[dsl::auto_type]
pub(super) fn tag_list() -> _ {
    article_tags::table
        .inner_join(tags::table)
        .filter(article_tags::article_id.eq(articles::id))
        .select(array_agg(tags::name).aggregate_order(tags::name))
        .single_value()
}

/// How many users favorited the outer query's article.
#[dsl::auto_type]
fn favorites_count() -> _ {
    let count: dsl::count_star = dsl::count_star();
    favorites::table
        .filter(favorites::article_id.eq(articles::id))
        .select(count)
        .single_value()
        .assume_not_null()
}

/// Whether `viewer` favorited the outer query's article (never, anonymous:
/// `user_id = NULL` holds for no row).
#[dsl::auto_type]
fn favorited_by(viewer: Option<i64>) -> _ {
    dsl::exists(
        favorites::table
            .filter(favorites::article_id.eq(articles::id))
            .filter(favorites::user_id.nullable().eq(viewer)),
    )
}

/// Whether `viewer` follows the outer query's article's author.
#[dsl::auto_type]
fn author_followed_by(viewer: Option<i64>) -> _ {
    dsl::exists(
        follows::table
            .filter(follows::followed_id.eq(articles::author_id))
            .filter(follows::follower_id.nullable().eq(viewer)),
    )
}

/// What the API shows of an article besides its row, its author and its
/// tags, as `viewer` sees it: correlated subqueries of the outer query's
/// `articles` row, so a page of any size costs one statement.
#[dsl::auto_type]
pub(super) fn counts_seen_by(viewer: Option<i64>) -> _ {
    let favorited: favorited_by = favorited_by(viewer);
    let following: author_followed_by = author_followed_by(viewer);
    (favorites_count(), favorited, following)
}

/// What [`counts_seen_by`] reads: favorites count, favorited, following.
pub(super) type Counts = (i64, bool, bool);

pub(super) fn assemble(
    article: Article,
    author: User,
    tags: Vec<String>,
    counts: Counts,
) -> ArticleDetails {
    let (favorites_count, favorited, following_author) = counts;
    ArticleDetails {
        article,
        author,
        following_author,
        tags,
        favorited,
        favorites_count,
    }
}
