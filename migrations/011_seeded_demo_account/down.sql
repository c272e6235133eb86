DROP TABLE seeded_demo_account;
