//! What the API returns: the spec's User, Profile, Article and Comment, and
//! the envelopes around them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::articles::ArticleDetails;
use crate::db::comments::Comment;
use crate::db::users::User;

/// RFC 3339, UTC, always with milliseconds: clients compare these as text.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub email: String,
    pub token: String,
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    pub user: UserView,
}

impl UserResponse {
    pub fn new(user: User, token: String) -> Self {
        Self {
            user: UserView {
                email: user.email,
                token,
                username: user.username,
                bio: user.bio,
                image: user.image,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub following: bool,
}

impl ProfileView {
    pub fn new(user: User, following: bool) -> Self {
        Self {
            username: user.username,
            bio: user.bio,
            image: user.image,
            following,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileResponse {
    pub profile: ProfileView,
}

/// An article as lists show it: everything but the body.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArticleSummary {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub tag_list: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub favorited: bool,
    pub favorites_count: i64,
    pub author: ProfileView,
}

/// An article with its body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleView {
    #[serde(flatten)]
    pub summary: ArticleSummary,
    pub body: String,
}

/// The list view of an article, and the body that only the single view shows.
fn summary_and_body(details: ArticleDetails) -> (ArticleSummary, String) {
    let article = details.article;
    let summary = ArticleSummary {
        slug: article.slug,
        title: article.title,
        description: article.description,
        tag_list: details.tags,
        created_at: timestamp(article.created_at),
        updated_at: timestamp(article.updated_at),
        favorited: details.favorited,
        favorites_count: details.favorites_count,
        author: ProfileView::new(details.author, details.following_author),
    };
    (summary, article.body)
}

impl From<ArticleDetails> for ArticleSummary {
    fn from(details: ArticleDetails) -> Self {
        summary_and_body(details).0
    }
}

impl From<ArticleDetails> for ArticleView {
    fn from(details: ArticleDetails) -> Self {
        let (summary, body) = summary_and_body(details);
        Self { summary, body }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleResponse {
    pub article: ArticleView,
}

impl From<ArticleDetails> for ArticleResponse {
    fn from(details: ArticleDetails) -> Self {
        Self {
            article: details.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArticlesResponse {
    pub articles: Vec<ArticleSummary>,
    pub articles_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommentView {
    pub id: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub body: String,
    pub author: ProfileView,
}

impl CommentView {
    pub fn new(comment: Comment, author: User, following: bool) -> Self {
        Self {
            id: comment.id,
            created_at: timestamp(comment.created_at),
            updated_at: timestamp(comment.updated_at),
            body: comment.body,
            author: ProfileView::new(author, following),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommentResponse {
    pub comment: CommentView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommentsResponse {
    pub comments: Vec<CommentView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagsResponse {
    pub tags: Vec<String>,
}
