"""The tutorial's app, as our users start from it: sync views, legacy Query API,
check-then-insert, a commit per request, no auth. Its own table, as its db.create_all()
makes it (unique username and email: the index its check-then-insert reads), holding the
same rows as ours (bench.run.create_tutorial_table)."""

import os

from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
db = SQLAlchemy(app)


class User(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "tutorial_user"
    id = db.Column(db.BigInteger, primary_key=True)
    username = db.Column(db.String(80), unique=True, nullable=False)
    email = db.Column(db.String(254), unique=True, nullable=False)
    created_at = db.Column(db.DateTime(timezone=True), server_default=db.func.now())
    updated_at = db.Column(
        db.DateTime(timezone=True), server_default=db.func.now(), onupdate=db.func.now()
    )

    def to_dict(self):  # type: ignore[no-untyped-def]
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@app.route("/users", methods=["POST"])
def create_user():  # type: ignore[no-untyped-def]
    data = request.get_json()
    if not data or not all(key in data for key in ["username", "email"]):
        return jsonify({"message": "Missing username or email"}), 400
    if User.query.filter_by(username=data["username"]).first():
        return jsonify({"message": "Username already exists"}), 409
    try:
        new_user = User(username=data["username"], email=data["email"])
        db.session.add(new_user)
        db.session.commit()
        return jsonify({"message": "User created", "user": new_user.to_dict()}), 201  # type: ignore[no-untyped-call]
    except Exception as e:
        db.session.rollback()
        return jsonify({"message": "Failed to create user", "error": str(e)}), 500


@app.route("/users", methods=["GET"])
def get_users():  # type: ignore[no-untyped-def]
    limit = int(request.args.get("limit", 50))
    users = User.query.order_by(User.id).limit(limit).all()
    return jsonify([user.to_dict() for user in users]), 200


@app.route("/users/<int:user_id>", methods=["GET"])
def get_user(user_id):  # type: ignore[no-untyped-def]
    user = User.query.get(user_id)
    if user:
        return jsonify(user.to_dict()), 200
    return jsonify({"message": "User not found"}), 404
