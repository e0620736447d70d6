"""Stepline: a serverless workflow execution engine on Chalice, DynamoDB and SQS."""
